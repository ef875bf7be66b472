# SPDX-License-Identifier: Apache-2.0
#
# Finds the Swift runtime a C program needs to link libsvakit.a: swiftrt.o
# (once: it registers the library's metadata; without it conformance lookups
# silently fail, docs/BUILDING.md §4), swiftSynchronization and swiftCore.
# Sets SVAKIT_SWIFT_LINK_ITEMS, SVAKIT_SWIFT_RUNTIME_DIR and SVAKIT_SWIFTRT.
execute_process(
  COMMAND "${CMAKE_Swift_COMPILER}" -print-target-info
  OUTPUT_VARIABLE _svakit_target_info
  COMMAND_ERROR_IS_FATAL ANY)
string(JSON _svakit_resource_dir GET "${_svakit_target_info}" paths runtimeResourcePath)
string(JSON _svakit_triple GET "${_svakit_target_info}" target triple)
string(REGEX MATCH "^[^-]+" _svakit_arch "${_svakit_triple}")

set(SVAKIT_SWIFT_RUNTIME_DIR "${_svakit_resource_dir}/linux" CACHE PATH "Swift runtime libraries")
find_file(SVAKIT_SWIFTRT swiftrt.o
  PATHS "${SVAKIT_SWIFT_RUNTIME_DIR}/${_svakit_arch}"
  NO_DEFAULT_PATH REQUIRED)
find_library(SVAKIT_SWIFT_SYNCHRONIZATION swiftSynchronization
  PATHS "${SVAKIT_SWIFT_RUNTIME_DIR}" NO_DEFAULT_PATH REQUIRED)
find_library(SVAKIT_SWIFT_CORE swiftCore
  PATHS "${SVAKIT_SWIFT_RUNTIME_DIR}" NO_DEFAULT_PATH REQUIRED)

set(SVAKIT_SWIFT_LINK_ITEMS
  "${SVAKIT_SWIFTRT}"
  "${SVAKIT_SWIFT_SYNCHRONIZATION}"
  "${SVAKIT_SWIFT_CORE}"
  # Swift's floating-point rounding calls libm (ceil, in the flush queue's
  # percentiles); gcc does not link it by default.
  m
  "-Wl,-rpath,${SVAKIT_SWIFT_RUNTIME_DIR}")
