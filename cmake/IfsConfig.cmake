# One INTERFACE target carries the project's compile settings; every target links it.
add_library(ifs_config INTERFACE)
add_library(Ifs::Config ALIAS ifs_config)

target_compile_features(ifs_config INTERFACE cxx_std_20)
set(CMAKE_CXX_EXTENSIONS OFF)

target_compile_definitions(ifs_config INTERFACE
    QT_NO_KEYWORDS                 # Qt's slots/signals/emit clash with libtorch's headers
    QT_NO_CAST_FROM_ASCII
    QT_NO_CAST_TO_ASCII
    QT_USE_QSTRINGBUILDER
    QT_NO_URL_CAST_FROM_STRING
    QT_DISABLE_DEPRECATED_BEFORE=0x060200)

# The version in one generated header (#include "base/version.h"), not a definition on every file.
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${PROJECT_BINARY_DIR}/generated/base/version.h @ONLY)
target_include_directories(ifs_config INTERFACE ${PROJECT_BINARY_DIR}/generated)

# Our own code builds cleanly with these; CI (installer/setup.sh) turns them into errors with
# IFS_WERROR. Third-party headers (Qt, libtorch, OpenCV) come in as system headers and are exempt.
option(IFS_WERROR "Treat compiler warnings in our code as errors" OFF)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(ifs_config INTERFACE
        -Wall -Wextra -Wno-unused-parameter
        -Wnon-virtual-dtor -Woverloaded-virtual -Wshadow -Wsuggest-override
        -Wmissing-declarations -Wcast-qual -Wpointer-arith -Wformat=2 -Wimplicit-fallthrough)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        target_compile_options(ifs_config INTERFACE -Wduplicated-cond -Wlogical-op)
    endif()
    if(IFS_WERROR)
        target_compile_options(ifs_config INTERFACE -Werror)
    endif()
endif()

find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# Debian's libtorch links all of OpenCV, whose highgui loads Qt 5 into any process that loads
# libtorch. Our executables must not export Qt 6's inline functions (weak symbols in Debug
# builds), or Qt 5 binds to them and crashes at start-up: keep every symbol of ours hidden.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(ifs_config INTERFACE -fvisibility=hidden -fvisibility-inlines-hidden)
    target_link_options(ifs_config INTERFACE "LINKER:--exclude-libs,ALL")
endif()
