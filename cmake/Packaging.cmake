# What an operator installs: the `runtime` install component (the gatehouse binary,
# its web assets, the man page, the systemd unit, the sample config and the package
# documentation) and the Debian package CPack builds from it:
#   cmake --build build --target package     (or: cd build && cpack)
# The library, its headers and CMake files are the `development` component, left out
# of the .deb. See docs/DECISIONS.md, "Debian package".

set(GATEHOUSE_PACKAGE_MAINTAINER
    "gatehouse maintainers <maintainers@users.noreply.b-seed-43a1b54e.example>"
    CACHE STRING "Maintainer field of the Debian package")

# ---- the man page: help2man on the built binary ---------------------------------------
find_program(HELP2MAN help2man)
find_program(GZIP gzip)
set(GATEHOUSE_MANPAGE ${CMAKE_CURRENT_BINARY_DIR}/packaging/gatehouse.1)
if(HELP2MAN AND GZIP)
  add_custom_command(OUTPUT ${GATEHOUSE_MANPAGE} ${GATEHOUSE_MANPAGE}.gz
    COMMAND ${CMAKE_COMMAND} -E env PATH=$ENV{PATH}
            sh ${CMAKE_CURRENT_SOURCE_DIR}/packaging/manpage.sh $<TARGET_FILE:gatehouse_cli>
            ${CMAKE_CURRENT_SOURCE_DIR}/packaging/gatehouse.1.h2m ${GATEHOUSE_MANPAGE}
    COMMAND ${GZIP} -9n -c ${GATEHOUSE_MANPAGE} > ${GATEHOUSE_MANPAGE}.gz
    DEPENDS gatehouse_cli ${CMAKE_CURRENT_SOURCE_DIR}/packaging/manpage.sh
            ${CMAKE_CURRENT_SOURCE_DIR}/packaging/gatehouse.1.h2m
    COMMENT "man page gatehouse.1 (help2man)")
  add_custom_target(gatehouse_manpage ALL DEPENDS ${GATEHOUSE_MANPAGE}.gz)
  install(FILES ${GATEHOUSE_MANPAGE}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          COMPONENT runtime)
else()
  message(WARNING "help2man or gzip not found: no man page (scripts/install-deps build)")
endif()

# ---- package documentation: copyright and the changelog (gzip -9n, as Debian wants) ---
set(GATEHOUSE_CHANGELOG ${CMAKE_CURRENT_BINARY_DIR}/packaging/changelog.gz)
add_custom_command(OUTPUT ${GATEHOUSE_CHANGELOG}
  COMMAND ${GZIP} -9n -c ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/changelog
          > ${GATEHOUSE_CHANGELOG}
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/changelog)
add_custom_target(gatehouse_changelog ALL DEPENDS ${GATEHOUSE_CHANGELOG})
install(FILES packaging/debian/copyright ${GATEHOUSE_CHANGELOG}
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)
# Deliberate departures from lintian's expectations, each explained in the file.
install(FILES packaging/debian/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
        RENAME gatehouse COMPONENT runtime)
# The package version comes from project(): the changelog's newest entry must agree.
file(STRINGS packaging/debian/changelog GATEHOUSE_CHANGELOG_TOP LIMIT_COUNT 1)
if(NOT GATEHOUSE_CHANGELOG_TOP MATCHES "^gatehouse \\(${PROJECT_VERSION}\\) ")
  message(WARNING "packaging/debian/changelog's newest entry is not version ${PROJECT_VERSION}")
endif()

# ---- the systemd unit and the sample config (paths chosen at install time) ------------
install(CODE "set(GH_SOURCE_DIR \"${CMAKE_CURRENT_SOURCE_DIR}\")
set(GH_BINARY_DIR \"${CMAKE_CURRENT_BINARY_DIR}\")
set(GH_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(GH_DATADIR \"${CMAKE_INSTALL_DATADIR}\")" COMPONENT runtime)
install(SCRIPT cmake/InstallSystemFiles.cmake COMPONENT runtime)

# ---- CPack: the .deb -------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gatehouse)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/package)
# Only the runtime component, installed with prefix /usr under a DESTDIR, so that the
# unit and the config land in /lib/systemd/system and /etc.
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_CURRENT_BINARY_DIR};gatehouse;runtime;/")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "${GATEHOUSE_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GATEHOUSE_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "OAuth2 token server compatible with FastAPI's security tutorial")
# The extended description (CPack puts the summary above it).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "gatehouse is a small, fast, self-hosted OAuth2 password-flow token service.
From outside it answers exactly like the application of FastAPI's security
tutorial: POST /token, JWT bearer tokens with scopes, OpenAPI with Swagger UI
and ReDoc. Users live in an embedded SQLite database or in PostgreSQL; bcrypt
and argon2 hashes exported from a FastAPI application keep working.
.
This package runs it as a hardened systemd service under its own system user,
with its data in /var/lib/gatehouse and its configuration in
/etc/gatehouse/gatehouse.toml.")
# Library dependencies come from dpkg-shlibdeps. libpq is not linked but loaded when a
# PostgreSQL store is opened (src/store/postgres_store.cpp): the SQLite default works
# without it, so it is recommended, not required. adduser makes the system user;
# procps has /bin/kill, which the unit's ExecReload runs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libpq5")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
