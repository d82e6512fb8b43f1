// The config file reader (`gatehouse --config FILE`): CLI11's TOML/INI reader behind
// gatehouse::tools::parse_config, on arbitrary file contents.
//
// Findings: any sanitizer report or hang; an exception that is not a std::exception
// (the command answers those as "error:" with exit code 1, anything else would end it
// with std::terminate).
#include <cstdint>
#include <sstream>
#include <string>

#include "config_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    auto config = gatehouse::tools::parse_config(in);
    for (const auto& [key, value] : config) (void)value.size();
  } catch (const std::exception&) {
    // Refused text: the command reports it and exits.
  }
  return 0;
}
