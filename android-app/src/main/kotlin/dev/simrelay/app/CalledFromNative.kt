package dev.simrelay.app

/**
 * Marks a Kotlin member that native code reaches by name (JNI `GetMethodID`/`GetFieldID`), so
 * R8 keeps it (see proguard-rules.pro). The pull model needs none today: Rust never calls
 * into Kotlin. Anything added later that native code looks up must carry this annotation.
 */
@Retention(AnnotationRetention.BINARY)
@Target(AnnotationTarget.CLASS, AnnotationTarget.FUNCTION, AnnotationTarget.FIELD, AnnotationTarget.CONSTRUCTOR)
annotation class CalledFromNative
