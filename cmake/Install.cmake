# SPDX-License-Identifier: Apache-2.0
#
# Installs lib/libsvakit.a, include/svakit.h and the headers it includes
# (svakit_debug.h, svakit_deprecated.h, svakit_kernel_names.h), the exported target
# SVAKit::svakit with SVAKitConfig.cmake and its version file, and svakit.pc.
# The link items point into the toolchain, so an install is relocatable only
# together with the same toolchain path (docs/BUILDING.md §5.3).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS svakit EXPORT SVAKitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/svakit.h include/svakit_debug.h include/svakit_deprecated.h
  include/svakit_kernel_names.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT SVAKitTargets
  NAMESPACE SVAKit::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/SVAKit)

configure_package_config_file(cmake/SVAKitConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/SVAKitConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/SVAKit)
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/SVAKitConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${CMAKE_CURRENT_BINARY_DIR}/SVAKitConfig.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/SVAKitConfigVersion.cmake"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/SVAKit)

configure_file(cmake/svakit.pc.in "${CMAKE_CURRENT_BINARY_DIR}/svakit.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/svakit.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
