# gatehouse.pc for `pkg-config --cflags --libs gatehouse` (cmake/gatehouse.pc.in),
# installed with the library in the `development` component. Its prefix is relative to
# the file's own directory (${pcfiledir}), so `cmake --install --prefix DIR` needs no
# reconfiguration.
set(GATEHOUSE_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH GATEHOUSE_PC_PREFIX_FROM_PCDIR /prefix/${GATEHOUSE_PC_DIR} /prefix)
string(REGEX REPLACE "/$" "" GATEHOUSE_PC_PREFIX_FROM_PCDIR "${GATEHOUSE_PC_PREFIX_FROM_PCDIR}")
set(GATEHOUSE_PC_DL_LIBS "")
foreach(lib IN LISTS CMAKE_DL_LIBS)
  string(APPEND GATEHOUSE_PC_DL_LIBS " -l${lib}")
endforeach()
string(STRIP "${GATEHOUSE_PC_DL_LIBS}" GATEHOUSE_PC_DL_LIBS)
configure_file(${CMAKE_CURRENT_LIST_DIR}/gatehouse.pc.in ${CMAKE_CURRENT_BINARY_DIR}/gatehouse.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gatehouse.pc DESTINATION ${GATEHOUSE_PC_DIR}
        COMPONENT development)
