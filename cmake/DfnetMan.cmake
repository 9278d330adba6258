# Man pages and shell completion, generated at build time from the binaries themselves:
#   build/man/<binary>.1       scripts/help2man.sh from `<binary> --help` (and each of its
#                              commands' --help) and `<binary> --version`
#   build/completion/dfnet     `dfnet completion bash` (bash-completion's completions/)
#   build/completion/_dfnet    `dfnet completion zsh` ($fpath)
# and the install step puts the pages in share/man/man1 and the completions where
# bash-completion and zsh look, each in its binary's component (cmake/DfnetInstall.cmake,
# which installs the binaries). DFNET_MAN=OFF skips it (a cross build
# cannot run what it builds).
option(DFNET_MAN "Generate man pages and completion scripts by running the built binaries" ON)
if(NOT DFNET_MAN)
  return()
endif()
include(GNUInstallDirs)

set(DFNET_MAN_DIR "${CMAKE_BINARY_DIR}/man")
set(DFNET_COMPLETION_DIR "${CMAKE_BINARY_DIR}/completion")
file(MAKE_DIRECTORY "${DFNET_MAN_DIR}" "${DFNET_COMPLETION_DIR}")

# target; the page's one-line summary (its NAME section)
set(_dfnet_man_pages
  "dfnet" "the command line of a dfnet fleet: hosts, nodes, drivers, calls to drivers"
  "dfnet-manager" "the manager of a dfnet fleet: node topology, driver index, binding, calls, CA"
  "dfnet-host" "the host agent of a dfnet fleet: publishes a machine's hardware, runs its drivers"
  "dfnet-driver-host" "the process dfnet's drivers run in, started by dfnet-host"
  "dfnet-bindc" "compile, test, dump and match Fuchsia bind rules")
# the component (Debian package) of each page
set(_dfnet_man_component_dfnet tools)
set(_dfnet_man_component_dfnet-bindc tools)
set(_dfnet_man_component_dfnet-manager manager)
set(_dfnet_man_component_dfnet-host host)
set(_dfnet_man_component_dfnet-driver-host host)
set(_dfnet_man_outputs)
list(LENGTH _dfnet_man_pages _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET _dfnet_man_pages ${_i} _target)
  list(GET _dfnet_man_pages ${_j} _summary)
  if(NOT TARGET ${_target})
    continue()
  endif()
  set(_page "${DFNET_MAN_DIR}/${_target}.1")
  # the page of what is installed: dfnet-bindc's --help names its built-in bind libraries
  set(_exe ${_target})
  if(TARGET ${_target}-installed)
    set(_exe ${_target}-installed)
  endif()
  # installed compressed, as Debian wants them (gzip -9n: no name or time stamp inside)
  add_custom_command(OUTPUT "${_page}" "${_page}.gz"
    COMMAND sh "${CMAKE_SOURCE_DIR}/scripts/help2man.sh" "$<TARGET_FILE:${_exe}>"
            "${_summary}" "${_page}"
    COMMAND gzip -9nkf "${_page}"
    DEPENDS ${_exe} "${CMAKE_SOURCE_DIR}/scripts/help2man.sh"
    COMMENT "man page ${_target}.1"
    VERBATIM)
  list(APPEND _dfnet_man_outputs "${_page}" "${_page}.gz")
  install(FILES "${_page}.gz" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
    COMPONENT ${_dfnet_man_component_${_target}})
endforeach()

set(_dfnet_completions)
if(TARGET dfnet)
  foreach(_shell bash zsh)
    set(_file "${DFNET_COMPLETION_DIR}/dfnet")
    if(_shell STREQUAL "zsh")
      set(_file "${DFNET_COMPLETION_DIR}/_dfnet")
    endif()
    add_custom_command(OUTPUT "${_file}"
      COMMAND sh -c "\"$1\" completion ${_shell} > \"$2\"" sh "$<TARGET_FILE:dfnet>" "${_file}"
      DEPENDS dfnet
      COMMENT "dfnet completion ${_shell}"
      VERBATIM)
    list(APPEND _dfnet_completions "${_file}")
  endforeach()
  install(FILES "${DFNET_COMPLETION_DIR}/dfnet"
    DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT tools)
  install(FILES "${DFNET_COMPLETION_DIR}/_dfnet"
    DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/site-functions COMPONENT tools)
endif()
add_custom_target(dfnet_man ALL DEPENDS ${_dfnet_man_outputs} ${_dfnet_completions})
