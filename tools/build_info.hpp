// What `gatehouse --version` reports about the build. Defined in a file that
// cmake/BuildInfo.cmake writes at build time (the source revision changes without a
// new CMake configure run).
#pragma once

namespace gatehouse_build {
extern const char* const kVersion;    // project(VERSION) in CMakeLists.txt
extern const char* const kRevision;   // `git describe --always --dirty`, or "unknown"
extern const char* const kBuildType;  // CMAKE_BUILD_TYPE
extern const char* const kCompiler;   // compiler id and version
}  // namespace gatehouse_build
