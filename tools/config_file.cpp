#include "config_file.hpp"

#include <CLI/CLI.hpp>

namespace gatehouse::tools {

std::map<std::string, std::string> parse_config(std::istream& in) {
  std::map<std::string, std::string> config;
  for (const auto& item : CLI::ConfigTOML().from_config(in)) {
    if (item.inputs.empty()) continue;
    config[item.name] = item.inputs.front();
  }
  return config;
}

}  // namespace gatehouse::tools
