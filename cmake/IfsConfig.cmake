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
    QT_DISABLE_DEPRECATED_BEFORE=0x060200
    IFS_VERSION="${PROJECT_VERSION}")

if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(ifs_config INTERFACE -Wall -Wextra -Wno-unused-parameter)
endif()

find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
