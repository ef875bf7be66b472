#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Every test SVAKit has, from a fresh Debian machine with only the Swift
# toolchain: installs what is missing, then runs
#   0. scripts/kerneldoc.py --check: every function of include/svakit.h and
#      svakit_debug.h has a complete kernel-doc comment and
#      docs/api/svakit.h.md is current;
#   1. swift build and swift test (Swift Testing) with every trait (the
#      sanitizer and the schedule explorer's points, so the explorer's
#      suites run), then the DocC reference;
#   2. the concurrent stress test again under ThreadSanitizer;
#   3. the CMake build with the cmocka suites and the differential tests
#      against Linux's own code (linux-source-6.12, scripts/kernel-source.sh)
#      under AddressSanitizer + UBSan, then 60 s of libFuzzer over the C ABI
#      (scripts/fuzz.sh: the target built by tests-c/fuzz/oss-fuzz/build.sh
#      as OSS-Fuzz builds it; the inputs replayed on reset and on new
#      machines);
#   4. a release CMake build, installed, consumed by a find_package() project,
#      an add_subdirectory() project and a pkg-config build;
#   5. the allocation counts of the hot paths (scripts/bench-counts.sh).
# Build trees go to .build-ci/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.build-ci

# Each step prints the seconds since the run began, so a slow step shows.
step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*"; }

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/cmocka.h ] || missing+=(libcmocka-dev)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

step "kernel-doc: include/svakit.h and svakit_debug.h documented, docs/api/svakit.h.md current"
python3 scripts/kerneldoc.py --check

# --enable-all-traits: IOMMUDebugPagealloc (a default) and ScheduleExplorer,
# whose points are inert outside an exploration, so every suite runs on this
# build and the explorer's suites with it (docs/TESTING.md, "Every
# interleaving"). The ordinary build (default traits) is built and tested
# below: under ThreadSanitizer, by CMake, and in release by the allocation counts.
step "swift build (every trait)"
swift build --enable-all-traits
step "swift test (every trait)"
swift test --enable-all-traits

step "the layers' direction: an upward reference does not build"
bash scripts/check-layers.sh

step "every public Swift declaration documented"
# swift-format's AllPublicDeclarationsHaveDocumentation, the only rule
# .swift-format-docs.json enables (lint's layout findings are ignored).
undocumented=$(swift format lint --configuration .swift-format-docs.json -r Sources/SVAKit Sources/SVAKitBase Sources/SVAKitMemory Sources/SVAKitIOMMU \
  Sources/SVAKitSVA Sources/SVAKitDMA Sources/SVAKitScenarios Sources/SVAKitExplorer 2>&1 \
  | grep AllPublicDeclarationsHaveDocumentation || true)
if [ -n "$undocumented" ]; then echo "$undocumented"; exit 1; fi

step "the Swift API reference (DocC), warnings as errors"
# Unresolved symbol links and curation mistakes fail the run (docs/BUILDING.md §9).
swift package --enable-all-traits --disable-sandbox generate-documentation --target SVAKitBase --target SVAKitMemory \
  --target SVAKitIOMMU --target SVAKitSVA --target SVAKitDMA --target SVAKit --target SVAKitScenarios --target SVAKitExplorer \
  --warnings-as-errors > "$root/.build/docc.log" 2>&1 || { cat "$root/.build/docc.log"; exit 1; }

rm -rf "$out"
step "swift test: the stress test and every concurrent test under ThreadSanitizer"
# -DSVAKIT_TSAN turns on the Mutex annotations that silence TSan's false
# alarms inside Synchronization (docs/BUILDING.md §7); halt_on_error makes any
# real report fail the run. The concurrent tests: the SVA registry under
# bind/unbind/DMA, the IOVA rcache on four CPUs, the DMA API with the
# flush-queue timer thread.
TSAN_OPTIONS="halt_on_error=1" swift test --scratch-path "$out/tsan" --sanitize=thread \
  -Xswiftc -DSVAKIT_TSAN --filter "StressTests|concurrent"

step "linux-source-6.12: the kernel files the differential tests compile"
# tests-c/kernel/: iova.c, io-pgtable-arm.c and dma_map_benchmark.c run beside
# the engine on the same seeded streams (docs/TESTING.md).
bash scripts/kernel-source.sh "$out/linux"

step "cmake: cmocka suites and the differential tests against Linux's code, under ASan + UBSan"
cmake -S . -B "$out/asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSVAKIT_SANITIZE=ON \
  -DSVAKIT_KERNEL_SOURCE="$out/linux"
ninja -C "$out/asan"
(cd "$out/asan" && ctest --output-on-failure)

step "cmake: the sanitizer compiled out, the explorer's points in (-DSVAKIT_SCHEDULE_EXPLORER=ON), the cmocka suites"
# CONFIG_IOMMU_DEBUG_PAGEALLOC=n: the engine builds without it, machines that
# ask for it are refused, the header's gates are constants (test_iommu_debug).
# Also with the schedule explorer's points compiled in (inert outside an
# exploration): the option builds, and the C suites pass with it.
cmake -S . -B "$out/nodebug" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSVAKIT_IOMMU_DEBUG_PAGEALLOC=OFF \
  -DSVAKIT_SCHEDULE_EXPLORER=ON
ninja -C "$out/nodebug"
(cd "$out/nodebug" && ctest --output-on-failure)

step "fuzz: libFuzzer over the C ABI for 60 s (crash reproducers first)"
bash scripts/fuzz.sh 60

step "cmake: release build, install"
cmake -S . -B "$out/release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out/prefix"
ninja -C "$out/release"
(cd "$out/release" && ctest --output-on-failure)
cmake --install "$out/release"

step "downstream: find_package(SVAKit)"
cmake -S downstream/find-package -B "$out/find-package" -G Ninja -DCMAKE_PREFIX_PATH="$out/prefix"
ninja -C "$out/find-package"
"$out/find-package/app"

step "downstream: add_subdirectory(SVAKit)"
cmake -S downstream/add-subdirectory -B "$out/add-subdirectory" -G Ninja
ninja -C "$out/add-subdirectory"
"$out/add-subdirectory/app"

step "downstream: pkg-config svakit"
# shellcheck disable=SC2046
cc -o "$out/pkg-config-app" downstream/main.c \
  $(PKG_CONFIG_PATH="$out/prefix/lib/pkgconfig" pkg-config --cflags --libs svakit)
"$out/pkg-config-app"

step "heap allocations on the hot paths (ordo-one/benchmark, counts only)"
# Zero mallocs per gate call, IOTLB-hit translate, full walk and 4 KiB
# map+unmap, against Benchmarks/Thresholds (docs/BENCHMARKS.md). Counts are
# exact whatever the machine's load; no time is asserted anywhere.
bash scripts/bench-counts.sh

step "all tests passed"
