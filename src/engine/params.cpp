// Parameter extraction and pydantic v1's lax conversions (FastAPI 0.92).
#include "gatehouse/params.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "http/text.hpp"

namespace gatehouse {

namespace detail {

namespace {

ValueError integer_error() { return {"value is not a valid integer", "type_error.integer", {}}; }
ValueError float_error() { return {"value is not a valid float", "type_error.float", {}}; }
ValueError bool_error() {
  return {"value could not be parsed to a boolean", "type_error.bool", {}};
}

// pydantic's error for a value outside what the C++ type holds: the one conint(ge=, le=)
// gives.
template <class N>
ValueError not_le(N limit) {
  return {"ensure this value is less than or equal to " + std::to_string(limit),
          "value_error.number.not_le",
          {{"limit_value", limit}}};
}
template <class N>
ValueError not_ge(N limit) {
  return {"ensure this value is greater than or equal to " + std::to_string(limit),
          "value_error.number.not_ge",
          {{"limit_value", limit}}};
}

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's int(str): whitespace around, a sign, digits with single '_' between them.
// Returns the digits without '_' (empty when the text is not an integer).
struct IntText {
  bool negative = false;
  std::string digits;
};
std::optional<IntText> int_text(std::string_view text) {
  if (text.size() > 4300) return std::nullopt;  // pydantic's max_str_int
  text = strip(text);
  IntText out;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    out.negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty() || !is_digit(text.front()) || !is_digit(text.back())) return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (is_digit(text[i])) {
      out.digits += text[i];
    } else if (text[i] != '_' || !is_digit(text[i + 1])) {
      return std::nullopt;  // a '_' is always followed by a digit (the last is one)
    }
  }
  auto nz = out.digits.find_first_not_of('0');
  out.digits = nz == std::string::npos ? "0" : out.digits.substr(nz);
  if (out.digits == "0") out.negative = false;
  return out;
}

// The magnitude, or nullopt when it is larger than uint64.
std::optional<std::uint64_t> magnitude(const std::string& digits) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  return v;
}

Result<std::int64_t, ValueError> signed_in_range(bool negative, std::optional<std::uint64_t> mag,
                                                 std::int64_t min, std::int64_t max) {
  if (negative) {
    const auto limit = static_cast<std::uint64_t>(-(min + 1)) + 1;
    if (!mag || *mag > limit) return Err{not_ge(min)};
    return *mag == limit ? min : -static_cast<std::int64_t>(*mag);
  }
  if (!mag || *mag > static_cast<std::uint64_t>(max)) return Err{not_le(max)};
  return static_cast<std::int64_t>(*mag);
}

Result<std::uint64_t, ValueError> unsigned_in_range(bool negative, std::optional<std::uint64_t> mag,
                                                    std::uint64_t max) {
  if (negative) return Err{not_ge(0)};
  if (!mag || *mag > max) return Err{not_le(max)};
  return *mag;
}

// Python's float(str): no hex, '_' only between digits, inf/infinity/nan in any case.
std::optional<double> float_text(std::string_view text) {
  text = strip(text);
  std::string clean;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      if (i == 0 || i + 1 == text.size() || !is_digit(text[i - 1]) || !is_digit(text[i + 1])) {
        return std::nullopt;
      }
      continue;
    }
    clean += text[i];
  }
  bool negative = false;
  std::string_view body = clean;
  if (!body.empty() && (body.front() == '+' || body.front() == '-')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  std::string lower;
  for (char c : body) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  double v = 0;
  if (lower == "inf" || lower == "infinity") {
    v = HUGE_VAL;
  } else if (lower == "nan") {
    v = std::nan("");
  } else {
    // Digits, an optional fraction, an optional exponent; at least one digit before
    // the exponent ("1.", ".5" and "1e5" are floats, "." and "e5" are not).
    std::size_t i = 0;
    std::size_t mantissa_digits = 0;
    while (i < lower.size() && is_digit(lower[i])) ++i, ++mantissa_digits;
    if (i < lower.size() && lower[i] == '.') {
      ++i;
      while (i < lower.size() && is_digit(lower[i])) ++i, ++mantissa_digits;
    }
    if (mantissa_digits == 0) return std::nullopt;
    if (i < lower.size() && lower[i] == 'e') {
      ++i;
      if (i < lower.size() && (lower[i] == '+' || lower[i] == '-')) ++i;
      const auto start = i;
      while (i < lower.size() && is_digit(lower[i])) ++i;
      if (i == start) return std::nullopt;
    }
    if (i != lower.size()) return std::nullopt;
    auto [p, ec] = std::from_chars(lower.data(), lower.data() + lower.size(), v);
    if (ec == std::errc::result_out_of_range) {
      // Python rounds an overflow to inf and an underflow to 0.
      const auto e = lower.find('e');
      v = e != std::string::npos && lower[e + 1] == '-' ? 0.0 : HUGE_VAL;
    } else if (ec != std::errc() || p != lower.data() + lower.size()) {
      return std::nullopt;
    }
  }
  return negative ? -v : v;
}

// Python's repr() of a float: the shortest digits that read back, in fixed notation
// when the exponent is from -4 to 15 (with ".0" when whole), else d.ddde+XX.
std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, end);  // "-1.2345e+02"
  std::string sign;
  if (sci.front() == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const auto e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(e + 1));
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else {
      const auto int_len = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out = digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
    return sign + out;
  }
  std::string mant = digits.substr(0, 1);
  if (digits.size() > 1) mant += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return sign + mant + exp_buf;
}

}  // namespace

boost::json::object error_object(const boost::json::array& loc, const ValueError& error) {
  boost::json::object e;
  e["loc"] = loc;
  e["msg"] = error.msg;
  e["type"] = error.type;
  if (!error.ctx.empty()) e["ctx"] = error.ctx;
  return e;
}

ValueError missing_error() { return {"field required", "value_error.missing", {}}; }
ValueError none_error() {
  return {"none is not an allowed value", "type_error.none.not_allowed", {}};
}

Result<std::int64_t, ValueError> int_from_text(std::string_view text, std::int64_t min,
                                               std::int64_t max) {
  auto t = int_text(text);
  if (!t) return Err{integer_error()};
  return signed_in_range(t->negative, magnitude(t->digits), min, max);
}

Result<std::uint64_t, ValueError> uint_from_text(std::string_view text, std::uint64_t max) {
  auto t = int_text(text);
  if (!t) return Err{integer_error()};
  return unsigned_in_range(t->negative, magnitude(t->digits), max);
}

namespace {
// A JSON value as Python's int() sees it: (negative, magnitude), or an error.
Result<std::pair<bool, std::optional<std::uint64_t>>, ValueError> json_int(
    const boost::json::value& v) {
  using R = std::pair<bool, std::optional<std::uint64_t>>;
  if (v.is_null()) return Err{none_error()};
  if (v.is_bool()) return R{false, v.as_bool() ? 1u : 0u};
  if (v.is_int64()) {
    const auto i = v.as_int64();
    return R{i < 0,
             i < 0 ? static_cast<std::uint64_t>(-(i + 1)) + 1 : static_cast<std::uint64_t>(i)};
  }
  if (v.is_uint64()) return R{false, v.as_uint64()};
  if (v.is_double()) {
    const double d = std::trunc(v.as_double());
    if (!std::isfinite(d)) return Err{integer_error()};
    const double mag = std::fabs(d);
    if (mag >= 18446744073709551616.0) return R{d < 0, std::nullopt};
    return R{d < 0 && mag != 0, static_cast<std::uint64_t>(mag)};
  }
  if (v.is_string()) {
    auto t = int_text(v.as_string());
    if (!t) return Err{integer_error()};
    return R{t->negative, magnitude(t->digits)};
  }
  return Err{integer_error()};
}
}  // namespace

Result<std::int64_t, ValueError> int_from_json(const boost::json::value& v, std::int64_t min,
                                               std::int64_t max) {
  auto r = json_int(v);
  if (!r) return Err{std::move(r).error()};
  return signed_in_range(r->first, r->second, min, max);
}

Result<std::uint64_t, ValueError> uint_from_json(const boost::json::value& v, std::uint64_t max) {
  auto r = json_int(v);
  if (!r) return Err{std::move(r).error()};
  return unsigned_in_range(r->first, r->second, max);
}

Result<double, ValueError> float_from_text(std::string_view text) {
  auto v = float_text(text);
  if (!v) return Err{float_error()};
  return *v;
}

Result<double, ValueError> float_from_json(const boost::json::value& v) {
  if (v.is_null()) return Err{none_error()};
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_bool()) return v.as_bool() ? 1.0 : 0.0;
  if (v.is_string()) return float_from_text(v.as_string());
  return Err{float_error()};
}

Result<bool, ValueError> bool_from_text(std::string_view text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (lower == "1" || lower == "on" || lower == "t" || lower == "true" || lower == "y" ||
      lower == "yes") {
    return true;
  }
  if (lower == "0" || lower == "off" || lower == "f" || lower == "false" || lower == "n" ||
      lower == "no") {
    return false;
  }
  return Err{bool_error()};
}

Result<bool, ValueError> bool_from_json(const boost::json::value& v) {
  if (v.is_null()) return Err{none_error()};
  if (v.is_bool()) return v.as_bool();
  if (v.is_string()) return bool_from_text(v.as_string());
  // 0 and 1 (and 0.0, 1.0: equal in Python's set lookup).
  if (v.is_int64() && (v.as_int64() == 0 || v.as_int64() == 1)) return v.as_int64() == 1;
  if (v.is_uint64() && v.as_uint64() <= 1) return v.as_uint64() == 1;
  if (v.is_double() && (v.as_double() == 0.0 || v.as_double() == 1.0)) {
    return v.as_double() == 1.0;
  }
  return Err{bool_error()};
}

Result<std::string, ValueError> string_from_json(const boost::json::value& v) {
  if (v.is_null()) return Err{none_error()};
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return std::string(v.as_bool() ? "True" : "False");
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_double()) return python_float_repr(v.as_double());
  return Err{ValueError{"str type expected", "type_error.str", {}}};
}

const char* param_in_name(ParamIn in) {
  switch (in) {
    case ParamIn::path:
      return "path";
    case ParamIn::query:
      return "query";
    case ParamIn::header:
      return "header";
    case ParamIn::cookie:
      return "cookie";
  }
  return "query";
}

std::string header_param_name(std::string_view name) {
  std::string out(name);
  for (auto& c : out) {
    if (c == '_') c = '-';
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

const std::string* param_value(RequestContext& ctx, ParamIn in, const std::string& name,
                               std::string& scratch) {
  switch (in) {
    case ParamIn::path:
      return find_param(ctx.path_params(), name);
    case ParamIn::query:
      return find_param(ctx.query_params(), name);
    case ParamIn::cookie:
      return find_param(ctx.cookies(), name);
    case ParamIn::header: {
      auto v = ctx.request().header(name);
      if (!v) return nullptr;
      // Starlette decodes header values as latin-1.
      scratch = http::latin1_to_utf8(*v);
      return &scratch;
    }
  }
  return nullptr;
}

void check_path_param(const Binding& binding, const std::string& name) {
  const auto& names = binding.path_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    throw std::logic_error("gatehouse: Path(\"" + name + "\") on route " + binding.route_path() +
                           ": the path has no {" + name + "}");
  }
}

namespace {

// Python's str() of a bound: "1" for an int, "1.0" or "0.5" for a float.
std::string bound_text(const Bound& b) {
  return b.is_integer ? std::to_string(b.integer) : python_float_repr(b.real);
}

boost::json::value bound_json(const Bound& b) {
  return b.is_integer ? boost::json::value(b.integer) : boost::json::value(b.real);
}

// v > b (or >= when `or_equal`), exactly when both are integers.
bool above(double v, std::optional<std::int64_t> integer, const Bound& b, bool or_equal) {
  if (integer && b.is_integer) return or_equal ? *integer >= b.integer : *integer > b.integer;
  return or_equal ? v >= b.real : v > b.real;
}

bool below(double v, std::optional<std::int64_t> integer, const Bound& b, bool or_equal) {
  if (integer && b.is_integer) return or_equal ? *integer <= b.integer : *integer < b.integer;
  return or_equal ? v <= b.real : v < b.real;
}

ValueError bound_error(const std::string& words, const char* type, const Bound& b) {
  return {"ensure this value is " + words + " " + bound_text(b),
          type,
          {{"limit_value", bound_json(b)}}};
}

// Code points in UTF-8 text (Python's len of the decoded str).
std::size_t code_points(std::string_view v) {
  std::size_t n = 0;
  for (char c : v) n += (static_cast<unsigned char>(c) & 0xC0u) != 0x80u;
  return n;
}

}  // namespace

std::optional<ValueError> number_constraint_error(double v, std::optional<std::int64_t> integer,
                                                  const ParamDoc& doc) {
  // pydantic v1's number_size_validator: gt, ge, lt, le, the first broken one. NaN
  // passes none of them, as in Python.
  if (doc.gt && !above(v, integer, *doc.gt, false)) {
    return bound_error("greater than", "value_error.number.not_gt", *doc.gt);
  }
  if (doc.ge && !above(v, integer, *doc.ge, true)) {
    return bound_error("greater than or equal to", "value_error.number.not_ge", *doc.ge);
  }
  if (doc.lt && !below(v, integer, *doc.lt, false)) {
    return bound_error("less than", "value_error.number.not_lt", *doc.lt);
  }
  if (doc.le && !below(v, integer, *doc.le, true)) {
    return bound_error("less than or equal to", "value_error.number.not_le", *doc.le);
  }
  return std::nullopt;
}

std::optional<ValueError> length_constraint_error(std::string_view v, const ParamDoc& doc) {
  const auto n = code_points(v);
  if (doc.min_length && n < *doc.min_length) {
    return ValueError{
        "ensure this value has at least " + std::to_string(*doc.min_length) + " characters",
        "value_error.any_str.min_length",
        {{"limit_value", *doc.min_length}}};
  }
  if (doc.max_length && n > *doc.max_length) {
    return ValueError{
        "ensure this value has at most " + std::to_string(*doc.max_length) + " characters",
        "value_error.any_str.max_length",
        {{"limit_value", *doc.max_length}}};
  }
  return std::nullopt;
}

void constraint_schema(const ParamDoc& doc, boost::json::object& schema) {
  // FastAPI 0.92 shows bounds as floats (minimum: 1.0), in this order.
  if (doc.lt) schema["exclusiveMaximum"] = doc.lt->real;
  if (doc.gt) schema["exclusiveMinimum"] = doc.gt->real;
  if (doc.le) schema["maximum"] = doc.le->real;
  if (doc.ge) schema["minimum"] = doc.ge->real;
  if (doc.max_length) schema["maxLength"] = *doc.max_length;
  if (doc.min_length) schema["minLength"] = *doc.min_length;
}

void check_constraints_apply(const ParamDoc& doc, bool number, bool text, const std::string& name) {
  if (!number && (doc.gt || doc.ge || doc.lt || doc.le)) {
    throw std::logic_error("gatehouse: parameter \"" + name +
                           "\": gt/ge/lt/le apply to numbers only");
  }
  if (!text && (doc.min_length || doc.max_length)) {
    throw std::logic_error("gatehouse: parameter \"" + name +
                           "\": min_length/max_length apply to strings only");
  }
}

std::vector<const std::string*> query_values(RequestContext& ctx, const std::string& name) {
  std::vector<const std::string*> out;
  for (const auto& [k, v] : ctx.query_params()) {
    if (k == name) out.push_back(&v);
  }
  return out;
}

}  // namespace detail

}  // namespace gatehouse
