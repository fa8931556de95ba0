# Find module for PCRE2 (8-bit code units), which Debian ships with pkg-config only
# (libpcre2-dev). Defines the imported target PkgConfig::PCRE2.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(PCRE2 REQUIRED_VARS PCRE2_LIBRARIES VERSION_VAR PCRE2_VERSION)
