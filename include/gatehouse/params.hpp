// Request parameters as dependencies, after FastAPI's Path/Query/Header/Cookie: one
// declaration is both the OpenAPI parameter (registered when the route is declared)
// and the per-request extraction and validation, with pydantic v1's error objects
// (FastAPI 0.92) merged into one 422 in declaration order.
//
//   app.get("/notes/{note_id}", {.name = "read_note"},
//           [](int note_id, const std::optional<std::string>& q, int limit) { ... },
//           Path<int>("note_id"), Query<std::optional<std::string>>("q"),
//           Query<int>("limit", 10));
//
// A value type is std::string, bool, an integer or floating-point type, or
// std::optional of one (then the parameter is not required and absent means nullopt).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gatehouse/http.hpp"
#include "gatehouse/model.hpp"
#include "gatehouse/security.hpp"

namespace gatehouse {

// Why a value did not validate: pydantic v1's message, type and context.
struct ValueError {
  ValueError(std::string m, std::string t, boost::json::object c = {})
      : msg(std::move(m)), type(std::move(t)), ctx(std::move(c)) {}
  std::string msg;
  std::string type;
  boost::json::object ctx;
};

namespace detail {

// One error object of a 422 at `loc`, in FastAPI 0.92's key order.
boost::json::object error_object(const boost::json::array& loc, const ValueError& error);
ValueError missing_error();
ValueError none_error();

// pydantic v1's lax conversions. Integers: Python's int() of a string (whitespace,
// sign, '_' between digits), truncation of a float; the C++ type's range is checked
// as pydantic's ge/le would (value_error.number.not_ge / not_le).
Result<std::int64_t, ValueError> int_from_text(std::string_view text, std::int64_t min,
                                               std::int64_t max);
Result<std::uint64_t, ValueError> uint_from_text(std::string_view text, std::uint64_t max);
Result<std::int64_t, ValueError> int_from_json(const boost::json::value& v, std::int64_t min,
                                               std::int64_t max);
Result<std::uint64_t, ValueError> uint_from_json(const boost::json::value& v, std::uint64_t max);
// Python's float() of a string.
Result<double, ValueError> float_from_text(std::string_view text);
Result<double, ValueError> float_from_json(const boost::json::value& v);
// pydantic v1's bool: 0/1, and off/on, f/t, false/true, n/y, no/yes in any case.
Result<bool, ValueError> bool_from_text(std::string_view text);
Result<bool, ValueError> bool_from_json(const boost::json::value& v);
// pydantic v1's str: a JSON number or boolean becomes Python's str() of it.
Result<std::string, ValueError> string_from_json(const boost::json::value& v);

template <class T>
struct is_optional : std::false_type {};
template <class U>
struct is_optional<std::optional<U>> : std::true_type {};

template <class T>
inline constexpr bool dependent_false = false;

}  // namespace detail

// How a value type converts: its JSON schema, from text (a parameter), from JSON and
// to JSON. Specialised for the scalar types here, for std::optional and std::vector,
// and for described structs in models.hpp.
template <class T, class Enable = void>
struct ValueTraits {
  static_assert(detail::dependent_false<T>,
                "gatehouse: this type cannot be a parameter or model field; use std::string, "
                "bool, an integer or floating-point type, std::optional or std::vector of one, "
                "or a struct described with BOOST_DESCRIBE_STRUCT (models.hpp)");
};

template <>
struct ValueTraits<std::string> {
  static constexpr bool required = true;
  static void schema(boost::json::object& s) { s["type"] = "string"; }
  static Result<std::string, ValueError> from_text(std::string_view t) { return std::string(t); }
  static Result<std::string, ValueError> from_json(const boost::json::value& v) {
    return detail::string_from_json(v);
  }
  static boost::json::value to_json(const std::string& v) { return boost::json::value(v); }
};

template <>
struct ValueTraits<bool> {
  static constexpr bool required = true;
  static void schema(boost::json::object& s) { s["type"] = "boolean"; }
  static Result<bool, ValueError> from_text(std::string_view t) {
    return detail::bool_from_text(t);
  }
  static Result<bool, ValueError> from_json(const boost::json::value& v) {
    return detail::bool_from_json(v);
  }
  static boost::json::value to_json(bool v) { return boost::json::value(v); }
};

template <class T>
struct ValueTraits<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static constexpr bool required = true;
  static void schema(boost::json::object& s) { s["type"] = "integer"; }
  static Result<T, ValueError> from_text(std::string_view t) {
    if constexpr (std::is_signed_v<T>) {
      auto r =
          detail::int_from_text(t, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
      if (!r) return Err{std::move(r).error()};
      return static_cast<T>(*r);
    } else {
      auto r = detail::uint_from_text(t, std::numeric_limits<T>::max());
      if (!r) return Err{std::move(r).error()};
      return static_cast<T>(*r);
    }
  }
  static Result<T, ValueError> from_json(const boost::json::value& v) {
    if constexpr (std::is_signed_v<T>) {
      auto r =
          detail::int_from_json(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
      if (!r) return Err{std::move(r).error()};
      return static_cast<T>(*r);
    } else {
      auto r = detail::uint_from_json(v, std::numeric_limits<T>::max());
      if (!r) return Err{std::move(r).error()};
      return static_cast<T>(*r);
    }
  }
  static boost::json::value to_json(T v) { return boost::json::value(v); }
};

template <class T>
struct ValueTraits<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static constexpr bool required = true;
  static void schema(boost::json::object& s) { s["type"] = "number"; }
  static Result<T, ValueError> from_text(std::string_view t) {
    auto r = detail::float_from_text(t);
    if (!r) return Err{std::move(r).error()};
    return static_cast<T>(*r);
  }
  static Result<T, ValueError> from_json(const boost::json::value& v) {
    auto r = detail::float_from_json(v);
    if (!r) return Err{std::move(r).error()};
    return static_cast<T>(*r);
  }
  static boost::json::value to_json(T v) { return boost::json::value(static_cast<double>(v)); }
};

template <class U>
struct ValueTraits<std::optional<U>> {
  static constexpr bool required = false;
  static void schema(boost::json::object& s) { ValueTraits<U>::schema(s); }
  static Result<std::optional<U>, ValueError> from_text(std::string_view t) {
    auto r = ValueTraits<U>::from_text(t);
    if (!r) return Err{std::move(r).error()};
    return std::optional<U>(std::move(*r));
  }
  static boost::json::value to_json(const std::optional<U>& v) {
    return v ? ValueTraits<U>::to_json(*v) : boost::json::value(nullptr);
  }
};

template <class U>
struct ValueTraits<std::vector<U>> {
  static constexpr bool required = true;
  static void schema(boost::json::object& s) {
    s["type"] = "array";
    boost::json::object items;
    ValueTraits<U>::schema(items);
    s["items"] = std::move(items);
  }
  static boost::json::value to_json(const std::vector<U>& v) {
    boost::json::array a;
    for (const auto& e : v) a.push_back(ValueTraits<U>::to_json(e));
    return a;
  }
};

// Where a parameter is read from.
enum class ParamIn { path, query, header, cookie };

// A numeric bound as the declaration wrote it: an integer bound is shown as Python
// shows an int ("1"), a floating-point one as a float ("0.5", "1.0").
struct Bound {
  template <class N>
  requires(std::is_arithmetic_v<N> && !std::is_same_v<N, bool>)
      Bound(N n)  // NOLINT(google-explicit-constructor): `.ge = 1` reads as FastAPI's ge=1
      : is_integer(std::is_integral_v<N>),
        integer(std::is_integral_v<N> ? static_cast<std::int64_t>(n) : 0),
        real(static_cast<double>(n)) {}
  bool is_integer;
  std::int64_t integer;
  double real;
};

// What a parameter's declaration says besides its name and type: its description and
// FastAPI's constraints (Query(..., ge=1, le=100, min_length=3)), checked after the
// value is converted, with pydantic v1's errors, and published in its schema
// (minimum, exclusiveMaximum, minLength...). Numeric bounds apply to numbers, lengths
// (in characters, as Python's len) to strings; on a list (Query<std::vector<T>>) they
// apply to each item, as pydantic applies them.
//
//   Query<int>("limit", 10, {.ge = 1, .le = 100})
struct ParamDoc {
  std::string description;
  std::optional<Bound> gt;
  std::optional<Bound> ge;
  std::optional<Bound> lt;
  std::optional<Bound> le;
  std::optional<std::size_t> min_length;
  std::optional<std::size_t> max_length;
};

namespace detail {

const char* param_in_name(ParamIn in);
// The constraint that `v` breaks, checked in pydantic v1's order (gt, ge, then lt, le).
// `integer`: v exactly, when the value is an integer that fits.
std::optional<ValueError> number_constraint_error(double v, std::optional<std::int64_t> integer,
                                                  const ParamDoc& doc);
// min_length, then max_length, counted in code points.
std::optional<ValueError> length_constraint_error(std::string_view v, const ParamDoc& doc);
// The constraints' schema keys, in the order FastAPI 0.92 publishes them.
void constraint_schema(const ParamDoc& doc, boost::json::object& schema);
// Throws std::logic_error when `doc` constrains what a value of this kind cannot have
// (a length on a number, a bound on a string or a bool).
void check_constraints_apply(const ParamDoc& doc, bool number, bool text, const std::string& name);
// Every value of a query parameter sent more than once, in order (?tag=a&tag=b).
std::vector<const std::string*> query_values(RequestContext& ctx, const std::string& name);

template <class T>
struct is_std_vector : std::false_type {};
template <class U>
struct is_std_vector<std::vector<U>> : std::true_type {};

// The scalar a parameter of type T holds (int for std::optional<int> or std::vector<int>).
template <class T>
struct param_scalar {
  using type = T;
};
template <class U>
struct param_scalar<std::optional<U>> {
  using type = typename param_scalar<U>::type;
};
template <class U>
struct param_scalar<std::vector<U>> {
  using type = typename param_scalar<U>::type;
};

template <class T>
struct unwrap_param_optional {
  using type = T;
};
template <class U>
struct unwrap_param_optional<std::optional<U>> {
  using type = U;
};

// Appends the error of a constraint `value` breaks, at `loc`.
template <class T>
void check_constraints(const T& value, const ParamDoc& doc, const boost::json::array& loc,
                       boost::json::array& errors) {
  std::optional<ValueError> e;
  if constexpr (is_optional<T>::value) {
    if (value) check_constraints(*value, doc, loc, errors);
    return;
  } else if constexpr (is_std_vector<T>::value) {
    std::int64_t i = 0;
    for (const auto& item : value) {
      boost::json::array item_loc = loc;
      item_loc.push_back(i++);
      check_constraints(item, doc, item_loc, errors);
    }
    return;
  } else if constexpr (std::is_same_v<T, std::string>) {
    e = length_constraint_error(value, doc);
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    std::optional<std::int64_t> exact;
    if (std::is_signed_v<T> ||
        static_cast<std::uint64_t>(value) <=
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      exact = static_cast<std::int64_t>(value);
    }
    e = number_constraint_error(static_cast<double>(value), exact, doc);
  } else if constexpr (std::is_floating_point_v<T>) {
    e = number_constraint_error(static_cast<double>(value), std::nullopt, doc);
  }
  if (e) errors.push_back(error_object(loc, *e));
}
// FastAPI's convert_underscores for headers: "x_token" and "X-Token" are "x-token".
std::string header_param_name(std::string_view name);
// The raw value of a parameter in this request, or nullptr when it was not sent.
const std::string* param_value(RequestContext& ctx, ParamIn in, const std::string& name,
                               std::string& scratch);
// Throws std::logic_error unless the route's path template has a parameter `name`.
void check_path_param(const Binding& binding, const std::string& name);

template <class T>
Dependency<T> param_dependency(ParamIn in, std::string name, std::optional<T> default_value,
                               ParamDoc doc) {
  using Traits = ValueTraits<T>;
  using Scalar = typename param_scalar<T>::type;
  constexpr bool kList = is_std_vector<typename unwrap_param_optional<T>::type>::value;
  static_assert(std::is_same_v<Scalar, std::string> || std::is_same_v<Scalar, bool> ||
                    std::is_arithmetic_v<Scalar>,
                "gatehouse: a Path/Query/Header/Cookie parameter is std::string, bool, an integer "
                "or floating-point type, std::optional of one, or (Query only) std::vector of one");
  if (kList && in != ParamIn::query) {
    throw std::logic_error("gatehouse: parameter \"" + name +
                           "\": only Query takes a list (std::vector)");
  }
  check_constraints_apply(doc, std::is_arithmetic_v<Scalar> && !std::is_same_v<Scalar, bool>,
                          std::is_same_v<Scalar, std::string>, name);
  if (in == ParamIn::header) name = header_param_name(name);
  return Dependency<T>(
      [in, name = std::move(name), default_value = std::move(default_value), doc = std::move(doc)](
          const SecurityScopes&, Binding& binding) {
        if (in == ParamIn::path) check_path_param(binding, name);
        const bool required = in == ParamIn::path || (Traits::required && !default_value);
        Binding::Parameter p;
        p.name = name;
        p.in = param_in_name(in);
        p.required = required;
        p.schema["title"] = python_title(name);
        if constexpr (kList) {
          // FastAPI 0.92 publishes a list's length bounds on the list and on its items.
          ParamDoc lengths;
          lengths.min_length = doc.min_length;
          lengths.max_length = doc.max_length;
          constraint_schema(lengths, p.schema);
          Traits::schema(p.schema);
          boost::json::object items;
          constraint_schema(doc, items);
          for (auto& kv : p.schema["items"].as_object()) items[kv.key()] = kv.value();
          p.schema["items"] = std::move(items);
        } else {
          constraint_schema(doc, p.schema);
          Traits::schema(p.schema);
        }
        if (default_value) {
          auto d = Traits::to_json(*default_value);
          if (!d.is_null()) p.schema["default"] = std::move(d);
        }
        if (!doc.description.empty()) p.description = doc.description;
        binding.add_parameter(std::move(p));
        return typename Dependency<T>::Resolver(
            [in, name, default_value, required, doc](RequestContext& ctx) -> Outcome<T> {
              const boost::json::array loc{param_in_name(in), name};
              if constexpr (kList) {
                const auto raws = query_values(ctx, name);
                if (raws.empty()) {
                  if (default_value) return *default_value;
                  if (!required) return T{};
                  return Err{HttpException::validation_error({error_object(loc, missing_error())})};
                }
                using Item = typename unwrap_param_optional<T>::type::value_type;
                typename unwrap_param_optional<T>::type items;
                boost::json::array errors;
                std::int64_t i = 0;
                for (const auto* raw : raws) {
                  boost::json::array item_loc = loc;
                  item_loc.push_back(i++);
                  auto item = ValueTraits<Item>::from_text(*raw);
                  if (!item) {
                    errors.push_back(error_object(item_loc, item.error()));
                    continue;
                  }
                  check_constraints(*item, doc, item_loc, errors);
                  items.push_back(std::move(*item));
                }
                if (!errors.empty()) return Err{HttpException::validation_error(std::move(errors))};
                return T(std::move(items));
              } else {
                std::string scratch;
                const std::string* raw = param_value(ctx, in, name, scratch);
                if (raw == nullptr) {
                  if (default_value) return *default_value;
                  if (!required) return T{};
                  return Err{HttpException::validation_error({error_object(loc, missing_error())})};
                }
                auto value = Traits::from_text(*raw);
                if (!value)
                  return Err{HttpException::validation_error({error_object(loc, value.error())})};
                boost::json::array errors;
                check_constraints(*value, doc, loc, errors);
                if (!errors.empty()) return Err{HttpException::validation_error(std::move(errors))};
                return std::move(*value);
              }
            });
      },
      static_cast<int>(in) + 1);
}

}  // namespace detail

// A parameter of the route's path template ("/notes/{note_id}"): always required.
// Naming a parameter the template does not have fails when the route is declared.
template <class T>
class Path : public Dependency<T> {
 public:
  explicit Path(std::string name, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::path, std::move(name), std::nullopt,
                                                  std::move(doc))) {}
};

// A query-string parameter: required unless T is std::optional or a default is given.
template <class T>
class Query : public Dependency<T> {
 public:
  explicit Query(std::string name, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::query, std::move(name), std::nullopt,
                                                  std::move(doc))) {}
  // (A template, so that `Query<T>("n", {.ge = 1})` is never read as a default.)
  template <class D>
  requires std::convertible_to<D, T> Query(std::string name, D default_value, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::query, std::move(name),
                                                  T(std::move(default_value)), std::move(doc))) {}
};

// A request header, named as FastAPI names it: lower case, '_' as '-' ("x_token" and
// "X-Token" both read and document the header "x-token"). The first one sent is used.
template <class T>
class Header : public Dependency<T> {
 public:
  explicit Header(std::string name, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::header, std::move(name), std::nullopt,
                                                  std::move(doc))) {}
  // (A template, so that `Header<T>("n", {.ge = 1})` is never read as a default.)
  template <class D>
  requires std::convertible_to<D, T> Header(std::string name, D default_value, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::header, std::move(name),
                                                  T(std::move(default_value)), std::move(doc))) {}
};

// A cookie of the request's Cookie header.
template <class T>
class Cookie : public Dependency<T> {
 public:
  explicit Cookie(std::string name, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::cookie, std::move(name), std::nullopt,
                                                  std::move(doc))) {}
  // (A template, so that `Cookie<T>("n", {.ge = 1})` is never read as a default.)
  template <class D>
  requires std::convertible_to<D, T> Cookie(std::string name, D default_value, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::cookie, std::move(name),
                                                  T(std::move(default_value)), std::move(doc))) {}
};

}  // namespace gatehouse
