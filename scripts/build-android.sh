#!/usr/bin/env bash
# Builds the simrelay APK on a developer machine with the Android SDK and NDK:
#   scripts/build-android.sh [debug|release]
# Gradle's :android-app:cargoNdk task builds libsimrelay_jni.so for arm64-v8a, armeabi-v7a and
# x86_64 with cargo-ndk before the JNI libs are merged; this script checks the prerequisites
# and runs `assembleDebug`/`assembleRelease`. (The host without an SDK runs
# scripts/check-android-host.sh instead.)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VARIANT=${1:-debug}
case "$VARIANT" in
    debug) TASK=assembleDebug ;;
    release) TASK=assembleRelease ;;
    *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac
fail() { echo "build-android: $*" >&2; exit 1; }

cd "$ROOT"
if [ -z "${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}" ] && ! grep -qs '^sdk.dir=' local.properties; then
    fail "no Android SDK: set ANDROID_HOME or sdk.dir in local.properties"
fi
installed=$(rustup target list --installed)
for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
cargo ndk --version >/dev/null 2>&1 || cargo install --locked cargo-ndk

if [ -x ./gradlew ]; then
    GRADLE=./gradlew
elif command -v gradle >/dev/null; then
    GRADLE=gradle
else
    fail "no Gradle: open the project in Android Studio once, or install Gradle 8.14+ and run 'gradle wrapper'"
fi
"$GRADLE" ":android-app:$TASK"
find "$ROOT/android-app/build/outputs/apk/$VARIANT" -name '*.apk' -print
