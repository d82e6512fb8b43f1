// `gatehouse config check`: the files `serve` would open in its data directory,
// checked as serve checks them.
#pragma once

#include <string>
#include <vector>

#include "settings.hpp"

namespace gatehouse::cli {

// Appends one message per problem (each names its setting): a data directory that is
// not a directory, or a key or SQLite file that others may read or write. A missing
// file is no problem (serve creates it); a PostgreSQL database has no files here.
void check_data_files(const Setting& dir, const Setting& db, const Setting& alg,
                      std::vector<std::string>& problems);

}  // namespace gatehouse::cli
