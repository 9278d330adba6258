# dfnet_driver_package(<name> SOURCES <src>... BIND <rules.bind> TESTS <tests.json>
#                      MANIFEST <meta/name.json> [LIBS <lib>...] [INCLUDES <lib.bind>...])
#
# Builds one boot driver package (docs/design.md "Driver packages") under
# ${CMAKE_BINARY_DIR}/drivers/<name>/:
#
#   <name>/meta/<name>.json         the manifest, copied (its program.binary and
#                                   program.bind are checked at configure time)
#   <name>/meta/bind/<name>.bindbc  the bind rules compiled by dfnet-bindc
#   <name>/driver/<name>.so         the driver, a MODULE built against
#                                   include/dfnet/driver.h; only its
#                                   DFNET_DRIVER_EXPORT symbol is visible, static
#                                   libraries' symbols stay inside it
#
# so that `dfnet-manager --drivers ${CMAKE_BINARY_DIR}/drivers` finds every boot driver,
# and installs the same files under <prefix>/lib/dfnet/drivers/<name>/ (component host).
#
# The same file serves the dfnet tree and, installed with find_package(dfnet)
# (packaging/cmake/dfnetConfig.cmake.in sets DFNET_DRIVER_INSTALLED), driver authors
# outside it: there the driver links dfnet::driver (include/dfnet/driver.h, drivers/common,
# the dfnet/hw messages, nanopb), LIBS dfnet_drvkit and dfnet_proto_hw (the tree's names of
# what dfnet::driver carries) are taken as dfnet::driver, and dfnet::bindc compiles the
# bind rules. A drivers/<name>/ folder of the tree thus builds unchanged outside it.
# The bind tests (TESTS, Fuchsia's tests.json format) run under ctest as
# "<name>-bind_bind_test". Targets: driver-<name> (the .so, depends on the rest),
# and dfnet_drivers (every package).
if(NOT TARGET dfnet_drivers)
  add_custom_target(dfnet_drivers ALL)
endif()
set(DFNET_DRIVERS_DIR "${CMAKE_BINARY_DIR}/drivers" CACHE INTERNAL
    "Where the boot driver packages are laid out")
if(NOT DFNET_INSTALL_PKGLIBDIR)
  set(DFNET_INSTALL_PKGLIBDIR "lib/dfnet")
endif()

function(dfnet_driver_package name)
  cmake_parse_arguments(D "" "BIND;TESTS;MANIFEST" "SOURCES;LIBS;INCLUDES" ${ARGN})
  if(NOT D_SOURCES OR NOT D_BIND OR NOT D_MANIFEST)
    message(FATAL_ERROR "dfnet_driver_package(${name}): SOURCES, BIND and MANIFEST are required")
  endif()
  set(pkg "${DFNET_DRIVERS_DIR}/${name}")
  get_filename_component(manifest "${D_MANIFEST}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")

  # The manifest must point at the files laid out here.
  file(READ "${manifest}" _json)
  string(JSON _binary ERROR_VARIABLE _err GET "${_json}" program binary)
  string(JSON _bind ERROR_VARIABLE _err2 GET "${_json}" program bind)
  if(NOT _binary STREQUAL "driver/${name}.so" OR NOT _bind STREQUAL "meta/bind/${name}.bindbc")
    message(FATAL_ERROR "${manifest}: program.binary must be \"driver/${name}.so\" and "
                        "program.bind \"meta/bind/${name}.bindbc\"")
  endif()

  add_library(driver-${name} MODULE ${D_SOURCES})
  if(DFNET_DRIVER_INSTALLED)
    list(REMOVE_ITEM D_LIBS dfnet_drvkit dfnet_proto_hw)
    target_link_libraries(driver-${name} PRIVATE dfnet::driver ${D_LIBS})
    target_compile_options(driver-${name} PRIVATE -Wall -Wextra)
  else()
    target_compile_options(driver-${name} PRIVATE ${DFNET_WARNINGS})
    target_include_directories(driver-${name} PRIVATE "${CMAKE_SOURCE_DIR}/include"
                               "${CMAKE_SOURCE_DIR}")
    target_link_libraries(driver-${name} PRIVATE ${D_LIBS})
  endif()
  # dfnet_driver_* and dfnet_call_* resolve against dfnet-driver-host at dlopen time;
  # nothing of the static libraries linked in may interpose on (or be interposed by) the
  # driver host's own copies.
  target_link_options(driver-${name} PRIVATE "LINKER:--exclude-libs,ALL")
  set_target_properties(driver-${name} PROPERTIES
    PREFIX "" OUTPUT_NAME "${name}"
    LIBRARY_OUTPUT_DIRECTORY "${pkg}/driver"
    C_VISIBILITY_PRESET hidden)

  add_custom_command(OUTPUT "${pkg}/meta/${name}.json"
    COMMAND ${CMAKE_COMMAND} -E copy "${manifest}" "${pkg}/meta/${name}.json"
    DEPENDS "${manifest}"
    COMMENT "driver package ${name}: manifest"
    VERBATIM)
  add_custom_target(driver-${name}-manifest DEPENDS "${pkg}/meta/${name}.json")
  add_dependencies(driver-${name} driver-${name}-manifest)

  if(COMMAND dfnet_bind_program)
    set(_tests)
    if(D_TESTS)
      set(_tests TESTS "${D_TESTS}")
    endif()
    set(_incs)
    if(D_INCLUDES)
      set(_incs INCLUDES ${D_INCLUDES})
    endif()
    dfnet_bind_program(${name}-bind RULES "${D_BIND}" OUTPUT "${pkg}/meta/bind/${name}.bindbc"
                       ${_tests} ${_incs})
    add_dependencies(driver-${name} ${name}-bind)
  else()
    message(WARNING "driver package ${name}: dfnet_bind_program() missing (bind/ not built): "
                    "no bind bytecode")
  endif()
  add_dependencies(dfnet_drivers driver-${name})

  # <prefix>/lib/dfnet/drivers/<name>/, where the packaged dfnet-manager.service reads
  # the boot drivers
  set(_dest "${DFNET_INSTALL_PKGLIBDIR}/drivers/${name}")
  install(TARGETS driver-${name} LIBRARY DESTINATION "${_dest}/driver" COMPONENT host)
  install(FILES "${pkg}/meta/${name}.json" DESTINATION "${_dest}/meta" COMPONENT host)
  if(TARGET ${name}-bind)
    install(FILES "${pkg}/meta/bind/${name}.bindbc" DESTINATION "${_dest}/meta/bind"
      COMPONENT host)
  endif()
endfunction()
