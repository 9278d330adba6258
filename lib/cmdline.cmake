# dfnet_cmdline: what the command lines of every dfnet binary share.
#   lib/version.h  the version every binary prints with --version and every peer sends as
#                  Hello.software_version. Its text is generated at every build by
#                  cmake/DfnetVersion.cmake from the project version and `git describe`
#                  (rewritten only when it changes: then version.c is compiled again and
#                  the binaries relinked).
#   lib/suggest.h  "did you mean": the nearest known command or option to a mistyped one.
#   lib/cmdline.h  the rest they share: the usage-error line, the "unknown option" message,
#                  --help, numbers with a range, an option's help line.
#   lib/bind_key_name.h  a property key as a person writes it: a deprecated fuchsia.BIND_*
#                  name (a misspelt one refused with the nearest), or a string key.
#   lib/property_text.h  a node property written as text, KEY=VALUE: dfnet node add-test and
#                  dfnet-bindc match read it alike.
#   lib/config_file.h  the "key = value" files: /etc/dfnet/{manager,host}.conf (their
#                  directory compiled in from CMake's sysconfdir) and the CLI's config.
set(DFNET_VERSION_DIR "${CMAKE_BINARY_DIR}/generated")
add_custom_target(dfnet_version_header
  COMMAND "${CMAKE_COMMAND}" "-DSOURCE_DIR=${CMAKE_SOURCE_DIR}" "-DVERSION=${PROJECT_VERSION}"
          "-DOUTPUT=${DFNET_VERSION_DIR}/dfnet_version.h"
          -P "${CMAKE_SOURCE_DIR}/cmake/DfnetVersion.cmake"
  BYPRODUCTS "${DFNET_VERSION_DIR}/dfnet_version.h"
  VERBATIM)
add_library(dfnet_cmdline STATIC version.c suggest.c cmdline.c config_file.c bind_key_name.c
  property_text.c)
add_dependencies(dfnet_cmdline dfnet_version_header)
target_compile_options(dfnet_cmdline PRIVATE ${DFNET_WARNINGS})
target_include_directories(dfnet_cmdline PRIVATE "${DFNET_VERSION_DIR}"
  PUBLIC "${CMAKE_SOURCE_DIR}")
# config_file.c reads the file (lib/fileio.h) and returns lib/status codes
target_link_libraries(dfnet_cmdline PUBLIC dfnet_common)
include(GNUInstallDirs) # the top-level CMakeLists.txt has set the prefix (/usr: /etc)
# public: the binaries' --help (and so their man pages) name the directory too
target_compile_definitions(dfnet_cmdline PUBLIC
  "DFNET_CONFIG_DIR_DEFAULT=\"${CMAKE_INSTALL_FULL_SYSCONFDIR}/dfnet\"")
set_target_properties(dfnet_cmdline PROPERTIES POSITION_INDEPENDENT_CODE ON)
