// The config file (`--config FILE`): TOML/INI `key = value` lines, read with CLI11's
// reader. Apart from the command so that the fuzzer (fuzz/fuzz_config.cpp) reaches it.
#pragma once

#include <istream>
#include <map>
#include <string>

namespace gatehouse::tools {

// Each key's value (its first input; a key given twice: the last; sections are
// ignored). Throws a CLI::ParseError (a std::exception) for text the reader refuses.
std::map<std::string, std::string> parse_config(std::istream& in);

}  // namespace gatehouse::tools
