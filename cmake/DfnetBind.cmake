# dfnet_bind_program(<target> RULES <file.bind> OUTPUT <out.bindbc>
#                    [TESTS <tests.json>] [INCLUDES <lib.bind>...])
#
# Compiles bind rules with dfnet-bindc at build time into OUTPUT (a relative OUTPUT is
# under the current binary dir) and adds a target <target> that builds it. With TESTS, the
# Fuchsia-format bind tests run under ctest as "<target>_bind_test". The built-in
# libraries (bind/lib) are always on the search path.
# Included from bind/CMakeLists.txt, so every later directory (drivers/ ...) can call it;
# installed, from dfnetConfig.cmake, where DFNET_BINDC is the imported dfnet::bindc and
# DFNET_BIND_LIB_DIR the installed bind libraries (given with --lib-dir: the installed
# program's built-in directory is that of the final prefix, which a DESTDIR lacks).
function(dfnet_bind_program target)
  cmake_parse_arguments(B "" "RULES;OUTPUT;TESTS" "INCLUDES" ${ARGN})
  if(NOT B_RULES OR NOT B_OUTPUT)
    message(FATAL_ERROR "dfnet_bind_program(${target}): RULES and OUTPUT are required")
  endif()
  get_filename_component(_rules "${B_RULES}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  get_filename_component(_out "${B_OUTPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  set(_inc_args)
  set(_inc_files)
  foreach(inc ${B_INCLUDES})
    get_filename_component(_inc "${inc}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND _inc_args --include "${_inc}")
    list(APPEND _inc_files "${_inc}")
  endforeach()
  file(GLOB _builtin_libs "${DFNET_BIND_LIB_DIR}/*.bind")
  set(_bindc "${DFNET_BINDC}")
  if(NOT _bindc)
    set(_bindc dfnet-bindc)
  endif()
  if(DFNET_DRIVER_INSTALLED)
    list(APPEND _inc_args --lib-dir "${DFNET_BIND_LIB_DIR}")
  endif()
  get_filename_component(_out_dir "${_out}" DIRECTORY)
  add_custom_command(OUTPUT "${_out}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${_out_dir}"
    COMMAND ${_bindc} compile ${_inc_args} "${_rules}" -o "${_out}"
    DEPENDS ${_bindc} "${_rules}" ${_inc_files} ${_builtin_libs}
    COMMENT "dfnet-bindc compile ${B_RULES}"
    VERBATIM)
  add_custom_target(${target} ALL DEPENDS "${_out}")
  set_target_properties(${target} PROPERTIES DFNET_BINDBC "${_out}")
  if(B_TESTS)
    get_filename_component(_tests "${B_TESTS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    add_test(NAME ${target}_bind_test
      COMMAND ${_bindc} test ${_inc_args} "${_rules}" --test-spec "${_tests}")
  endif()
endfunction()
