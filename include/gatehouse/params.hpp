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

// What a parameter's documentation says besides its name and type.
struct ParamDoc {
  std::string description;
};

namespace detail {

const char* param_in_name(ParamIn in);
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
        Traits::schema(p.schema);
        if (default_value) {
          auto d = Traits::to_json(*default_value);
          if (!d.is_null()) p.schema["default"] = std::move(d);
        }
        if (!doc.description.empty()) p.description = doc.description;
        binding.add_parameter(std::move(p));
        return typename Dependency<T>::Resolver(
            [in, name, default_value, required](RequestContext& ctx) -> Outcome<T> {
              std::string scratch;
              const std::string* raw = param_value(ctx, in, name, scratch);
              const boost::json::array loc{param_in_name(in), name};
              if (raw == nullptr) {
                if (default_value) return *default_value;
                if (!required) return T{};
                return Err{HttpException::validation_error({error_object(loc, missing_error())})};
              }
              auto value = Traits::from_text(*raw);
              if (!value)
                return Err{HttpException::validation_error({error_object(loc, value.error())})};
              return std::move(*value);
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
  Query(std::string name, T default_value, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::query, std::move(name),
                                                  std::move(default_value), std::move(doc))) {}
};

// A request header, named as FastAPI names it: lower case, '_' as '-' ("x_token" and
// "X-Token" both read and document the header "x-token"). The first one sent is used.
template <class T>
class Header : public Dependency<T> {
 public:
  explicit Header(std::string name, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::header, std::move(name), std::nullopt,
                                                  std::move(doc))) {}
  Header(std::string name, T default_value, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::header, std::move(name),
                                                  std::move(default_value), std::move(doc))) {}
};

// A cookie of the request's Cookie header.
template <class T>
class Cookie : public Dependency<T> {
 public:
  explicit Cookie(std::string name, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::cookie, std::move(name), std::nullopt,
                                                  std::move(doc))) {}
  Cookie(std::string name, T default_value, ParamDoc doc = {})
      : Dependency<T>(detail::param_dependency<T>(ParamIn::cookie, std::move(name),
                                                  std::move(default_value), std::move(doc))) {}
};

}  // namespace gatehouse
