import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// :android-app, the thin Kotlin shell. Its native library (libsimrelay_jni.so, crate core/jni)
// is built by cargo-ndk for every ABI below and merged into the APK as jniLibs.
plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

/** ABIs the APK ships; cargo-ndk maps them to Rust targets. */
val rustAbis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")
/** `-PrustProfile=debug` builds the core without optimisations (faster local iteration). */
val rustProfile = (findProperty("rustProfile") as String?) ?: "release"

android {
    namespace = "dev.simrelay.app"
    compileSdk = 36
    // NDK r28 links 16 KB-page-aligned libraries by default (required for API 35+ devices
    // with 16 KB pages); with an older NDK add -Wl,-z,max-page-size=16384. Change this to the
    // NDK you have installed if it differs.
    ndkVersion = "28.2.13676358"

    defaultConfig {
        applicationId = "dev.simrelay.app"
        minSdk = 26
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        ndk { abiFilters += rustAbis }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            java.srcDir("src/main/kotlin")
            jniLibs.srcDir(rustJniLibs)
        }
        getByName("androidTest").java.srcDir("src/androidTest/kotlin")
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    androidTestImplementation(libs.androidx.test.runner)
    androidTestImplementation(libs.androidx.test.rules)
    androidTestImplementation(libs.androidx.test.junit)
}

/** Builds libsimrelay_jni.so for [rustAbis] with cargo-ndk (`cargo install cargo-ndk`). */
val cargoNdk by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds the Rust core (crate simrelay-jni) for ${rustAbis.joinToString()} with cargo-ndk"
    val repo = rootDir
    workingDir = repo
    inputs.files(fileTree(repo.resolve("core")) { include("**/*.rs", "**/Cargo.toml") })
    inputs.files(repo.resolve("Cargo.toml"), repo.resolve("Cargo.lock"))
    inputs.property("profile", rustProfile)
    outputs.dir(rustJniLibs)
    doFirst {
        environment("ANDROID_NDK_HOME", android.ndkDirectory.absolutePath)
    }
    commandLine(
        buildList {
            addAll(listOf("cargo", "ndk", "--platform", "26"))
            rustAbis.forEach { addAll(listOf("-t", it)) }
            addAll(listOf("-o", rustJniLibs.get().asFile.absolutePath, "build", "-p", "simrelay-jni"))
            if (rustProfile == "release") add("--release")
        },
    )
}

tasks.configureEach {
    if (name.startsWith("merge") && name.endsWith("JniLibFolders")) dependsOn(cargoNdk)
}
