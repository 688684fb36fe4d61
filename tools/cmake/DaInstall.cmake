# cmake --install: the da_dist executable, the libraries, their headers and a
# CMake package so that a user project can `find_package(da_dist)` and link
# `da_dist::da_dist` (e.g. to build a plug-in method).
include(CMakePackageConfigHelpers)

get_property(_da_libs GLOBAL PROPERTY DA_INSTALLED_LIBRARIES)
install(TARGETS ${_da_libs} EXPORT da_distTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Headers keep their folder: include "io/tile_archive.h", "config/config.h".
foreach(_dir io dist methods src)
  set(_dest ${CMAKE_INSTALL_INCLUDEDIR}/da_dist)
  if(NOT _dir STREQUAL "src")
    set(_dest ${_dest}/${_dir})
  endif()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/ DESTINATION ${_dest}
    FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/generated/build_info.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/da_dist)

install(EXPORT da_distTargets NAMESPACE da_dist::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/da_dist)
configure_package_config_file(${PROJECT_SOURCE_DIR}/tools/cmake/da_distConfig.cmake.in
  ${PROJECT_BINARY_DIR}/da_distConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/da_dist)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/da_distConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/da_distConfig.cmake
              ${PROJECT_BINARY_DIR}/da_distConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/da_dist)
