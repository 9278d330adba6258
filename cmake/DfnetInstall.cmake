# What `cmake --install` lays out, by component (one Debian package each, cmake/DfnetPackaging.cmake):
#
#   manager  bin/dfnet-manager, the systemd unit, sysusers.d (dfnet), tmpfiles.d,
#            /etc/dfnet/manager.conf and manager.env
#   host     lib/dfnet/dfnet-host (bin/dfnet-host links to it) and lib/dfnet/dfnet-driver-host
#            beside it, where dfnet-host finds it by default (host/agent/main.c
#            find_driver_host: beside /proc/self/exe, which is the link's target); the boot
#            driver packages under lib/dfnet/drivers/<name>/ (dfnet_driver_package()); the
#            systemd unit, sysusers.d (dfnet-driver), tmpfiles.d, the udev rules
#   tools    bin/dfnet, bin/dfnet-bindc (built with the installed bind library directory,
#            share/dfnet/bind, as its built-in one) and those bind libraries
#   client   libdfnet-client.so.1 (clients/CMakeLists.txt)
#   dev      the headers (include/dfnet/), libdfnet-client.so, dfnet-client.pc, the driver
#            kit (libdfnet-driver.a: drivers/common's helpers, the dfnet/hw and dfnet/lab
#            messages and nanopb's runtime, with their headers under include/dfnet/) and the
#            CMake package (lib/<arch>/cmake/dfnet: find_package(dfnet) gives dfnet::client,
#            dfnet::driver, dfnet::bindc and dfnet_driver_package())
#
# The man pages and completions go with their binaries' components (cmake/DfnetMan.cmake).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Where the private executables and the boot drivers go (relative to the prefix): the FHS
# /usr/lib/<package>, not the multiarch library directory.
set(DFNET_INSTALL_PKGLIBDIR "lib/dfnet" CACHE STRING
    "dfnet-host, dfnet-driver-host and the boot drivers, relative to the prefix")
set(DFNET_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/dfnet")
set(DFNET_INSTALL_BINDLIBDIR "${CMAKE_INSTALL_DATADIR}/dfnet/bind")
set(DFNET_INSTALL_DRIVERKIT_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}/dfnet/drvkit")
# systemd, sysusers.d, tmpfiles.d and udev under the prefix: /usr/lib/... with the prefix
# /usr, where Debian wants them (lintian: systemd-service-in-odd-location,
# misplaced-systemd-tmpfiles).
set(DFNET_INSTALL_SYSTEMDDIR "lib/systemd/system")
set(DFNET_INSTALL_SYSUSERSDIR "lib/sysusers.d")
set(DFNET_INSTALL_TMPFILESDIR "lib/tmpfiles.d")
set(DFNET_INSTALL_UDEVDIR "lib/udev/rules.d")

# ---- binaries --------------------------------------------------------------------------
if(TARGET dfnet-manager)
  install(TARGETS dfnet-manager RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT manager)
endif()
if(TARGET dfnet-host)
  install(TARGETS dfnet-host dfnet-driver-host
    RUNTIME DESTINATION ${DFNET_INSTALL_PKGLIBDIR} COMPONENT host)
  file(RELATIVE_PATH _dfnet_host_link "/${CMAKE_INSTALL_BINDIR}"
       "/${DFNET_INSTALL_PKGLIBDIR}/dfnet-host")
  file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/install-links")
  file(CREATE_LINK "${_dfnet_host_link}" "${CMAKE_BINARY_DIR}/install-links/dfnet-host" SYMBOLIC)
  install(FILES "${CMAKE_BINARY_DIR}/install-links/dfnet-host"
    DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT host)
endif()
# bin/dfnet: clients/CMakeLists.txt (component tools).

# dfnet-bindc as installed: the same program, its built-in bind library directory the
# installed one (the build tree's dfnet-bindc has bind/lib of the source tree).
if(TARGET dfnet-bindc)
  add_executable(dfnet-bindc-installed "${CMAKE_SOURCE_DIR}/bind/bindc.c")
  target_compile_options(dfnet-bindc-installed PRIVATE ${DFNET_WARNINGS})
  target_compile_definitions(dfnet-bindc-installed PRIVATE
    DFNET_BIND_LIB_DIR="${CMAKE_INSTALL_PREFIX}/${DFNET_INSTALL_BINDLIBDIR}")
  target_link_libraries(dfnet-bindc-installed PRIVATE dfnet_bind dfnet_cmdline)
  set_target_properties(dfnet-bindc-installed PROPERTIES OUTPUT_NAME dfnet-bindc
    RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/install-bin" EXPORT_NAME bindc)
  install(TARGETS dfnet-bindc-installed EXPORT dfnetTargets
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  install(DIRECTORY "${DFNET_BIND_LIB_DIR}/" DESTINATION ${DFNET_INSTALL_BINDLIBDIR}
    COMPONENT tools FILES_MATCHING PATTERN "*.bind")
endif()

# ---- the driver kit (dfnet::driver) ------------------------------------------------------
# What an out-of-tree driver links, as the tree's drivers do: drivers/common (dfnet_drvkit),
# the dfnet/hw and dfnet/lab messages (dfnet_proto_hw) and nanopb's runtime, in one static
# archive of position-independent code; dfnet_driver_package() links it with
# --exclude-libs,ALL, so none of it is visible outside the driver. Its headers: the
# messages under include/dfnet/{hw,lab}/ (#include "dfnet/hw/pci.pb.h"), the rest under the
# second include root include/dfnet/drvkit/ (#include "drivers/common/drvkit.h",
# "bind/dfnet_pci.h", <pb.h>: nanopb's headers of the very runtime in the archive).
if(TARGET dfnet_drvkit AND TARGET dfnet_proto_hw)
  add_library(dfnet_driver_kit STATIC $<TARGET_OBJECTS:dfnet_drvkit>
    $<TARGET_OBJECTS:dfnet_proto_hw> $<TARGET_OBJECTS:dfnet_nanopb>)
  set_target_properties(dfnet_driver_kit PROPERTIES OUTPUT_NAME dfnet-driver
    EXPORT_NAME driver_kit POSITION_INDEPENDENT_CODE ON)
  # drivers/common/drvkit.c parses JSON with cJSON (a shared library, as in the tree).
  target_link_libraries(dfnet_driver_kit INTERFACE "$<INSTALL_INTERFACE:cjson>")
  install(TARGETS dfnet_driver_kit EXPORT dfnetTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)

  add_library(dfnet_driver INTERFACE)
  set_target_properties(dfnet_driver PROPERTIES EXPORT_NAME driver)
  target_include_directories(dfnet_driver INTERFACE
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>"
    "$<INSTALL_INTERFACE:${DFNET_INSTALL_DRIVERKIT_INCLUDEDIR}>")
  target_link_libraries(dfnet_driver INTERFACE dfnet_driver_kit)
  install(TARGETS dfnet_driver EXPORT dfnetTargets COMPONENT dev)

  install(DIRECTORY "${CMAKE_BINARY_DIR}/proto/gen/dfnet/hw" "${CMAKE_BINARY_DIR}/proto/gen/dfnet/lab"
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dfnet COMPONENT dev FILES_MATCHING PATTERN "*.pb.h")
  install(FILES drivers/common/drvkit.h drivers/common/start.h drivers/common/retry.h
    drivers/common/worker.h drivers/common/fairq.h
    DESTINATION ${DFNET_INSTALL_DRIVERKIT_INCLUDEDIR}/drivers/common COMPONENT dev)
  install(DIRECTORY "${CMAKE_BINARY_DIR}/bind_headers/bind"
    DESTINATION ${DFNET_INSTALL_DRIVERKIT_INCLUDEDIR} COMPONENT dev FILES_MATCHING PATTERN "*.h")
  install(FILES "${DFNET_NANOPB_SRC}/pb.h" "${DFNET_NANOPB_SRC}/pb_common.h"
    "${DFNET_NANOPB_SRC}/pb_encode.h" "${DFNET_NANOPB_SRC}/pb_decode.h"
    DESTINATION ${DFNET_INSTALL_DRIVERKIT_INCLUDEDIR} COMPONENT dev)
endif()
# The public headers a client or a driver is written against (dfnet/bind.h is the bind
# compiler's own interface, whose library is not installed).
install(FILES include/dfnet/client.h include/dfnet/status.h include/dfnet/driver.h
  include/dfnet/bind_keys.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dfnet COMPONENT dev)

# ---- the CMake package -----------------------------------------------------------------
install(EXPORT dfnetTargets NAMESPACE dfnet:: DESTINATION ${DFNET_INSTALL_CMAKEDIR}
  FILE dfnetTargets.cmake COMPONENT dev)
configure_package_config_file("${CMAKE_SOURCE_DIR}/packaging/cmake/dfnetConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/packaging/dfnetConfig.cmake"
  INSTALL_DESTINATION ${DFNET_INSTALL_CMAKEDIR}
  PATH_VARS DFNET_INSTALL_BINDLIBDIR DFNET_INSTALL_PKGLIBDIR)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/packaging/dfnetConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_BINARY_DIR}/packaging/dfnetConfig.cmake"
  "${CMAKE_BINARY_DIR}/packaging/dfnetConfigVersion.cmake"
  "${CMAKE_SOURCE_DIR}/cmake/DfnetDriver.cmake" "${CMAKE_SOURCE_DIR}/cmake/DfnetBind.cmake"
  DESTINATION ${DFNET_INSTALL_CMAKEDIR} COMPONENT dev)

# ---- services: systemd units, users, directories, udev ------------------------------------
set(DFNET_INSTALL_FULL_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
set(DFNET_INSTALL_FULL_PKGLIBDIR "${CMAKE_INSTALL_PREFIX}/${DFNET_INSTALL_PKGLIBDIR}")
# Each daemon (its component: manager, host): its unit, its system user, its directories.
foreach(_component manager host)
  set(_unit dfnet-${_component})
  configure_file("${CMAKE_SOURCE_DIR}/packaging/systemd/${_unit}.service.in"
    "${CMAKE_BINARY_DIR}/packaging/systemd/${_unit}.service" @ONLY)
  install(FILES "${CMAKE_BINARY_DIR}/packaging/systemd/${_unit}.service"
    DESTINATION ${DFNET_INSTALL_SYSTEMDDIR} COMPONENT ${_component})
  install(FILES packaging/systemd/sysusers/${_unit}.conf
    DESTINATION ${DFNET_INSTALL_SYSUSERSDIR} COMPONENT ${_component})
  install(FILES packaging/systemd/tmpfiles/${_unit}.conf
    DESTINATION ${DFNET_INSTALL_TMPFILESDIR} COMPONENT ${_component})
endforeach()
install(FILES packaging/udev/70-dfnet-host.rules
  DESTINATION ${DFNET_INSTALL_UDEVDIR} COMPONENT host)
# /etc/dfnet/{manager,host}.env: the flags the units add; /etc/dfnet/{manager,host}.conf: the
# settings the binaries read (docs/configuration.md; every key commented out with its
# default). All conffiles of the packages (packaging/debian/*/conffiles). The binaries look
# in the same directory: lib/cmdline.cmake compiles ${CMAKE_INSTALL_FULL_SYSCONFDIR}/dfnet in.
install(FILES packaging/etc/manager.env packaging/etc/manager.conf
  DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/dfnet COMPONENT manager)
install(FILES packaging/etc/host.env packaging/etc/host.conf
  DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/dfnet COMPONENT host)
