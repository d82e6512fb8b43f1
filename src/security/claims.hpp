// Claim checks shared by jwt::decode and the Verifier (internal).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>

#include "gatehouse/verifier.hpp"

namespace gatehouse::jwt::detail {
// Python's int(x) for a JSON value, as python-jose applies it to exp/nbf/iat: nullopt
// where Python raises (a string that is not an integer, NaN, null, a list, an object).
std::optional<long double> python_int(const boost::json::value& v);
}  // namespace gatehouse::jwt::detail

namespace gatehouse::detail {
// Steps 9-12 of Verifier::verify (see verifier.hpp), in python-jose's order: iat, nbf,
// exp (± leeway), aud, iss, sub, jti, at_hash.
std::optional<Failure> check_registered_claims(const boost::json::object& claims, std::int64_t now,
                                               const VerifierOptions& options);
}  // namespace gatehouse::detail
