// Root Gradle build of simrelay: one Android application module around the Rust core.
// The Rust side is built by cargo (cargo-ndk) from a task in :android-app.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "simrelay"
include(":android-app")
