# Debian packages, one per install component (cmake/DfnetInstall.cmake), made by CPack:
#
#   cpack -G DEB            (in the build directory; the .deb files land there)
#
#   dfnet-manager     the manager, its unit, sysusers.d (dfnet), tmpfiles.d
#   dfnet-host        the host agent, dfnet-driver-host, the boot drivers, its unit,
#                     sysusers.d (dfnet-driver), tmpfiles.d, udev rules
#   dfnet-tools       dfnet (the CLI), dfnet-bindc and the bind libraries
#   libdfnet-client1  libdfnet-client.so.1
#   libdfnet-dev      headers, libdfnet-client.so, dfnet-client.pc, the driver kit and the
#                     CMake package (client and driver development)
#
# Depends come from dpkg-shlibdeps (CPACK_DEBIAN_PACKAGE_SHLIBDEPS) plus those written
# below. Every package has a copyright file and a changelog in /usr/share/doc/<package>;
# the maintainer scripts of dfnet-manager and dfnet-host (packaging/debian/) create the
# users with systemd-sysusers (useradd without it) and the directories with
# systemd-tmpfiles. lintian's overrides, each with its reason: packaging/debian/*.lintian.
include(GNUInstallDirs)

set(DFNET_DEB_MAINTAINER "dfnet maintainers <dfnet@lab.example.org>" CACHE STRING
    "The Maintainer field of dfnet's Debian packages")
set(DFNET_DEB_RELEASE 1)
set(DFNET_DEB_VERSION "${PROJECT_VERSION}-${DFNET_DEB_RELEASE}")

set(_dfnet_deb_components manager host tools client dev)
set(_dfnet_deb_name_manager dfnet-manager)
set(_dfnet_deb_name_host dfnet-host)
set(_dfnet_deb_name_tools dfnet-tools)
set(_dfnet_deb_name_client libdfnet-client${DFNET_CLIENT_SOVERSION})
set(_dfnet_deb_name_dev libdfnet-dev)

# /usr/share/doc/<package>/: copyright and changelog.Debian.gz (gzip -9n: reproducible)
configure_file("${CMAKE_SOURCE_DIR}/packaging/debian/changelog.in"
  "${CMAKE_BINARY_DIR}/packaging/debian/changelog.Debian" @ONLY)
execute_process(COMMAND gzip -9nf "${CMAKE_BINARY_DIR}/packaging/debian/changelog.Debian"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "gzip of packaging/debian/changelog.Debian failed")
endif()
foreach(_c ${_dfnet_deb_components})
  set(_doc "${CMAKE_INSTALL_DATADIR}/doc/${_dfnet_deb_name_${_c}}")
  install(FILES "${CMAKE_SOURCE_DIR}/packaging/debian/copyright"
    "${CMAKE_BINARY_DIR}/packaging/debian/changelog.Debian.gz"
    DESTINATION "${_doc}" COMPONENT ${_c})
  # the configuration files' format, beside the daemons' example /etc/dfnet/*.conf
  if(_c STREQUAL "manager" OR _c STREQUAL "host")
    install(FILES "${CMAKE_SOURCE_DIR}/docs/configuration.md" DESTINATION "${_doc}"
      COMPONENT ${_c})
  endif()
  if(EXISTS "${CMAKE_SOURCE_DIR}/packaging/debian/${_dfnet_deb_name_${_c}}.lintian")
    install(FILES "${CMAKE_SOURCE_DIR}/packaging/debian/${_dfnet_deb_name_${_c}}.lintian"
      DESTINATION "${CMAKE_INSTALL_DATADIR}/lintian/overrides"
      RENAME "${_dfnet_deb_name_${_c}}" COMPONENT ${_c})
  endif()
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dfnet)
set(CPACK_PACKAGE_VENDOR "dfnet")
set(CPACK_PACKAGE_CONTACT "${DFNET_DEB_MAINTAINER}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
# The packages install where the build was configured to (the tree's default prefix is /usr,
# CMakeLists.txt): the units, dfnet-bindc and the pkg-config file hold those paths.
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "dfnet: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}: Debian packages "
                 "(cpack -G DEB) want /usr")
endif()
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
    GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_COMPONENTS_ALL ${_dfnet_deb_components})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${DFNET_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${DFNET_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# a shlibs file for every package with a shared library: libdfnet-client1 (CPack reads
# this variable only globally; the drivers, without a SONAME, are left out of it)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_SOURCE dfnet)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

# The package a component's Depends: names for a sibling: exactly this version.
set(_dfnet_same "(= ${DFNET_DEB_VERSION})")

# dfnet-manager
set(CPACK_DEBIAN_MANAGER_PACKAGE_NAME dfnet-manager)
set(CPACK_DEBIAN_MANAGER_PACKAGE_SECTION net)
set(CPACK_COMPONENT_MANAGER_DESCRIPTION "manager of a dfnet driver fleet
dfnet is Fuchsia's driver framework (DFv2) across a network. The manager keeps
the node topology and the driver index of a fleet of lab boards and PCs,
matches nodes against the drivers' bind programs, starts each driver on the
host that owns the hardware, routes remote clients' calls to it, and is the
fleet's certificate authority.

This package has dfnet-manager and its systemd unit (run as the user dfnet).")
set(CPACK_DEBIAN_MANAGER_PACKAGE_CONTROL_EXTRA
  "${CMAKE_SOURCE_DIR}/packaging/debian/manager/postinst"
  "${CMAKE_SOURCE_DIR}/packaging/debian/manager/prerm"
  "${CMAKE_SOURCE_DIR}/packaging/debian/manager/postrm"
  "${CMAKE_SOURCE_DIR}/packaging/debian/manager/conffiles")
set(CPACK_DEBIAN_MANAGER_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_MANAGER_PACKAGE_SUGGESTS "dfnet-tools")

# dfnet-host
set(CPACK_DEBIAN_HOST_PACKAGE_NAME dfnet-host)
set(CPACK_DEBIAN_HOST_PACKAGE_SECTION net)
set(CPACK_COMPONENT_HOST_DESCRIPTION "host agent of a dfnet driver fleet, with its drivers
dfnet is Fuchsia's driver framework (DFv2) across a network. The host agent
publishes the hardware of a lab board or PC (PCI functions, USB devices with
hot-plug, the platform devices of a board file) to the fleet's manager and
runs the drivers it binds to them, each in a confined driver-host process (the
user dfnet-driver, Landlock, seccomp).

This package has dfnet-host, dfnet-driver-host, the boot driver packages
(/usr/lib/dfnet/drivers), the systemd unit and udev rules for USB devices.")
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_EXTRA
  "${CMAKE_SOURCE_DIR}/packaging/debian/host/postinst"
  "${CMAKE_SOURCE_DIR}/packaging/debian/host/prerm"
  "${CMAKE_SOURCE_DIR}/packaging/debian/host/postrm"
  "${CMAKE_SOURCE_DIR}/packaging/debian/host/conffiles")
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_HOST_PACKAGE_SUGGESTS "dfnet-tools")

# dfnet-tools
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME dfnet-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "command line of a dfnet driver fleet and bind compiler
dfnet is Fuchsia's driver framework (DFv2) across a network. This package has
dfnet, the command line of a fleet (hosts, nodes, drivers, leases,
certificates, calls to drivers), with bash and zsh completion, and dfnet-
bindc, the compiler of Fuchsia bind rules to bytecode v2, with dfnet's bind
libraries.")

# libdfnet-client1
set(CPACK_DEBIAN_CLIENT_PACKAGE_NAME libdfnet-client${DFNET_CLIENT_SOVERSION})
set(CPACK_DEBIAN_CLIENT_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# the ldconfig trigger lintian wants of a public library (lacks-ldconfig-trigger)
set(CPACK_DEBIAN_CLIENT_PACKAGE_CONTROL_EXTRA "${CMAKE_SOURCE_DIR}/packaging/debian/client/triggers")
set(CPACK_DEBIAN_CLIENT_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_COMPONENT_CLIENT_DESCRIPTION "client library of a dfnet driver fleet
dfnet is Fuchsia's driver framework (DFv2) across a network. libdfnet-client
calls remote drivers through the fleet's manager and uses its client API
(nodes, drivers, leases, watches), over mutually authenticated TLS websockets.")

# libdfnet-dev
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libdfnet-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libdfnet-client${DFNET_CLIENT_SOVERSION} ${_dfnet_same}, dfnet-tools ${_dfnet_same}, libcjson-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "cmake, pkg-config")
set(CPACK_COMPONENT_DEV_DESCRIPTION "development files of dfnet clients and drivers
dfnet is Fuchsia's driver framework (DFv2) across a network. This package has
what a client of libdfnet-client (dfnet/client.h, dfnet-client.pc) and a
driver built outside the dfnet tree (dfnet/driver.h, the driver kit libdfnet-
driver.a, the dfnet/hw messages) are built with, and the CMake package:
find_package(dfnet) gives dfnet::client, dfnet::driver, dfnet::bindc and
dfnet_driver_package().")

include(CPack)
