# Run by `cmake --install` (component runtime, after GH_* are set by an install(CODE)):
# the systemd unit and the sample config go where a system with this install prefix
# expects them. Prefix /usr (the Debian package): /etc/gatehouse, /lib/systemd/system
# and /var/lib/gatehouse. Any other prefix P: P/etc/gatehouse, P/lib/systemd/system and
# P/var/lib/gatehouse. The unit and the config name the installed binary and paths.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(gh_etc "/etc")
  set(gh_unit_dir "/lib/systemd/system")
  set(gh_state "/var/lib/gatehouse")
else()
  set(gh_etc "${CMAKE_INSTALL_PREFIX}/etc")
  set(gh_unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  set(gh_state "${CMAKE_INSTALL_PREFIX}/var/lib/gatehouse")
endif()
set(GATEHOUSE_BINARY "${CMAKE_INSTALL_PREFIX}/${GH_BINDIR}/gatehouse")
set(GATEHOUSE_CONFIG_FILE "${gh_etc}/gatehouse/gatehouse.toml")
set(GATEHOUSE_STATE_DIR "${gh_state}")
set(GATEHOUSE_WEB_DIR "${CMAKE_INSTALL_PREFIX}/${GH_DATADIR}/gatehouse/web")
configure_file("${GH_SOURCE_DIR}/packaging/gatehouse.service.in"
               "${GH_BINARY_DIR}/packaging/gatehouse.service" @ONLY)
configure_file("${GH_SOURCE_DIR}/packaging/gatehouse.toml.in"
               "${GH_BINARY_DIR}/packaging/gatehouse.toml" @ONLY)

file(INSTALL "${GH_BINARY_DIR}/packaging/gatehouse.service" DESTINATION "${gh_unit_dir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An existing config is the administrator's: never overwritten.
set(gh_config "$ENV{DESTDIR}${GATEHOUSE_CONFIG_FILE}")
if(EXISTS "${gh_config}")
  file(READ "${gh_config}" gh_old)
  file(READ "${GH_BINARY_DIR}/packaging/gatehouse.toml" gh_new)
  if(NOT gh_old STREQUAL gh_new)
    message(STATUS "Keeping the existing ${gh_config}")
    return()
  endif()
endif()
# 0640: the file can hold a database password (the package gives it to group gatehouse).
file(INSTALL "${GH_BINARY_DIR}/packaging/gatehouse.toml" DESTINATION "${gh_etc}/gatehouse"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
