import java.util.Properties
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

/**
 * Release signing, never committed: `keystore.properties` at the repository root (or the file
 * named by `SIMRELAY_KEYSTORE_PROPERTIES`) with `storeFile`, `storePassword`, `keyAlias`,
 * `keyPassword`; or the environment variables `SIMRELAY_KEYSTORE`, `SIMRELAY_KEYSTORE_PASSWORD`,
 * `SIMRELAY_KEY_ALIAS`, `SIMRELAY_KEY_PASSWORD` (CI). Without either the release APK is unsigned
 * and Gradle says so; debug builds always use the debug key.
 */
val releaseSigning: Map<String, String>? = run {
    val file = rootDir.resolve(System.getenv("SIMRELAY_KEYSTORE_PROPERTIES") ?: "keystore.properties")
    val fromFile = if (file.isFile) {
        Properties().apply { file.inputStream().use { load(it) } }
            .let { p -> listOf("storeFile", "storePassword", "keyAlias", "keyPassword").associateWith { p.getProperty(it) } }
    } else {
        null
    }
    val fromEnv = mapOf(
        "storeFile" to System.getenv("SIMRELAY_KEYSTORE"),
        "storePassword" to System.getenv("SIMRELAY_KEYSTORE_PASSWORD"),
        "keyAlias" to System.getenv("SIMRELAY_KEY_ALIAS"),
        "keyPassword" to System.getenv("SIMRELAY_KEY_PASSWORD"),
    )
    val chosen = fromFile ?: fromEnv.takeIf { env -> env["storeFile"] != null }
    chosen?.let { m ->
        val missing = m.filterValues { it.isNullOrEmpty() }.keys
        require(missing.isEmpty()) { "release signing: missing ${missing.joinToString()} (keystore.properties or SIMRELAY_* env)" }
        @Suppress("UNCHECKED_CAST")
        m as Map<String, String>
    }
}

android {
    namespace = "dev.simrelay.app"
    compileSdk = 36
    // NDK r28 links 16 KB-page-aligned libraries by default (required for API 35+ devices
    // with 16 KB pages); with an older NDK add -Wl,-z,max-page-size=16384. docs/android.md
    // names the same version: keep them in step (the host check compares them).
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

    signingConfigs {
        releaseSigning?.let { keys ->
            create("release") {
                storeFile = rootDir.resolve(keys.getValue("storeFile"))
                storePassword = keys.getValue("storePassword")
                keyAlias = keys.getValue("keyAlias")
                keyPassword = keys.getValue("keyPassword")
            }
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            if (releaseSigning != null) {
                signingConfig = signingConfigs.getByName("release")
            } else {
                logger.warn("simrelay: no release signing configured (keystore.properties or SIMRELAY_KEYSTORE): the release APK is unsigned")
            }
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

/**
 * cargo, also when Android Studio's PATH lacks `~/.cargo/bin`: `$CARGO_HOME/bin`, then
 * `~/.cargo/bin`, then PATH. A clear error when none has it.
 */
fun findCargo(): String {
    val exe = if (System.getProperty("os.name").startsWith("Windows")) "cargo.exe" else "cargo"
    val candidates = buildList {
        System.getenv("CARGO_HOME")?.let { add(File(it, "bin/$exe")) }
        add(File(System.getProperty("user.home"), ".cargo/bin/$exe"))
        System.getenv("PATH")?.split(File.pathSeparator)?.forEach { add(File(it, exe)) }
    }
    return candidates.firstOrNull { it.canExecute() }?.absolutePath
        ?: throw GradleException(
            "cargo not found (looked in \$CARGO_HOME/bin, ~/.cargo/bin and PATH). Install Rust from " +
                "https://rustup.rs, then `cargo install cargo-ndk`, or set CARGO_HOME.",
        )
}

/** The NDK AGP resolved for [android.ndkVersion] (AGP 8 and 9: `sdkComponents.ndkDirectory`). */
val ndkDir = androidComponents.sdkComponents.ndkDirectory

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
        environment("ANDROID_NDK_HOME", ndkDir.get().asFile.absolutePath)
        val cargo = findCargo()
        // cargo-ndk and rustc live next to cargo; put them on PATH for the child too.
        environment("PATH", File(cargo).parent + File.pathSeparator + (System.getenv("PATH") ?: ""))
        executable = cargo
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
