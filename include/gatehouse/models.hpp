// Typed models from one declaration: a struct described with Boost.Describe gives its
// JSON encoding, its decoding with pydantic v1's 422 errors (FastAPI 0.92), and its
// OpenAPI schema; model_of<T>() as a route's response_model filters the answer
// through T as FastAPI does, and JsonBody<T> reads a request body into T.
//
//   struct Note {
//     std::int64_t id;
//     std::string title;
//     std::optional<std::string> body;   // std::optional: not required, null when absent
//     std::vector<std::string> tags;
//   };
//   GATEHOUSE_MODEL(Note, id, title, body, tags)   // at namespace scope, beside Note
//
// A member that is not std::optional is required. Members are scalars (as for
// parameters, params.hpp), std::optional or std::vector of them.
#pragma once

#include <boost/describe/class.hpp>
#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/mp11/algorithm.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gatehouse/model.hpp"
#include "gatehouse/params.hpp"
#include "gatehouse/security.hpp"

// Describes struct T's members (Boost.Describe) and names its model T in OpenAPI.
#define GATEHOUSE_MODEL(T, ...)               \
  BOOST_DESCRIBE_STRUCT(T, (), (__VA_ARGS__)) \
  [[maybe_unused]] inline const char* gatehouse_model_name(const T*) { return #T; }

namespace gatehouse {

namespace detail {

template <class T>
inline constexpr bool is_described_v =
    boost::describe::has_describe_members<T>::value&& std::is_class_v<T>;

template <class T>
struct is_vector : std::false_type {};
template <class U>
struct is_vector<std::vector<U>> : std::true_type {};

template <class T>
using public_members = boost::describe::describe_members<T, boost::describe::mod_public>;

// True for the member types whose JSON reads back (ValueTraits' to_json, then
// decode_json) as the same value: std::string, bool, the integer types, and
// std::optional or std::vector of those. Not floating point (a NaN or an infinity
// does not), nor anything else, whose round trip is not checked here.
template <class M>
constexpr bool reads_back_unchanged() {
  if constexpr (std::is_same_v<M, std::string> || std::is_same_v<M, bool>) {
    return true;
  } else if constexpr (std::is_integral_v<M>) {
    return true;
  } else if constexpr (is_vector<M>::value) {
    return reads_back_unchanged<typename M::value_type>();
  } else if constexpr (is_optional<M>::value) {
    return reads_back_unchanged<typename M::value_type>();
  } else {
    return false;
  }
}

template <class T>
using member_type_t = std::remove_cvref_t<T>;

// Appends `s` as a JSON string exactly as boost::json::serialize writes one: `"` and
// `\\` escaped, \b \t \n \f \r as such, other bytes below 0x20 as \u00xx, every
// other byte (0x7F, and UTF-8 or not) as it is.
void append_json_text(std::string& out, std::string_view s);
void append_json_integer(std::string& out, std::int64_t v);
void append_json_integer(std::string& out, std::uint64_t v);

// True for the types write_json writes without building a boost::json::value: text,
// bool, integers (not the character types), std::optional and std::vector of those, and
// described structs of those.
template <class M>
constexpr bool writes_directly() {
  if constexpr (std::is_same_v<M, std::string> || std::is_same_v<M, bool>) {
    return true;
  } else if constexpr (std::is_integral_v<M>) {
    return !std::is_same_v<M, char> && !std::is_same_v<M, signed char> &&
           !std::is_same_v<M, unsigned char> && !std::is_same_v<M, wchar_t> &&
           !std::is_same_v<M, char8_t> && !std::is_same_v<M, char16_t> &&
           !std::is_same_v<M, char32_t>;
  } else if constexpr (is_vector<M>::value || is_optional<M>::value) {
    return writes_directly<typename M::value_type>();
  } else if constexpr (is_described_v<M>) {
    bool all = true;
    boost::mp11::mp_for_each<public_members<M>>([&](auto d) {
      all = all && writes_directly<member_type_t<decltype(std::declval<M&>().*d.pointer)>>();
    });
    return all;
  } else {
    return false;
  }
}

// Described struct M's member names as they open each member's JSON: `"name":`, and
// `,"name":` after the first; made once.
template <class M>
const std::vector<std::string>& json_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    boost::mp11::mp_for_each<public_members<M>>([&](auto d) {
      std::string key = out.empty() ? "" : ",";
      append_json_text(key, d.name);
      key += ':';
      out.push_back(std::move(key));
    });
    return out;
  }();
  return keys;
}

// Appends `v`'s JSON, the bytes boost::json::serialize(ValueTraits<M>::to_json(v))
// gives, without building that value (only for writes_directly<M>()).
template <class M>
void write_json(std::string& out, const M& v) {
  static_assert(writes_directly<M>());
  if constexpr (std::is_same_v<M, std::string>) {
    append_json_text(out, v);
  } else if constexpr (std::is_same_v<M, bool>) {
    out += v ? std::string_view("true") : std::string_view("false");
  } else if constexpr (std::is_integral_v<M>) {
    if constexpr (std::is_signed_v<M>) {
      append_json_integer(out, static_cast<std::int64_t>(v));
    } else {
      append_json_integer(out, static_cast<std::uint64_t>(v));
    }
  } else if constexpr (is_optional<M>::value) {
    if (v) {
      write_json(out, *v);
    } else {
      out += "null";
    }
  } else if constexpr (is_vector<M>::value) {
    out += '[';
    bool first = true;
    for (const auto& e : v) {
      if (!first) out += ',';
      first = false;
      write_json(out, e);
    }
    out += ']';
  } else {
    const auto& keys = json_keys<M>();
    std::size_t k = 0;
    out += '{';
    boost::mp11::mp_for_each<public_members<M>>([&](auto d) {
      out += keys[k++];
      write_json(out, v.*d.pointer);
    });
    out += '}';
  }
}

template <class T>
struct unwrap_optional {
  using type = T;
};
template <class U>
struct unwrap_optional<std::optional<U>> {
  using type = U;
};

boost::json::array loc_plus(const boost::json::array& loc, boost::json::value more);
ValueError dict_error();
ValueError list_error();
// pydantic v1 validates a model from dict(value): an object, or an array of pairs.
std::optional<boost::json::object> as_dict(const boost::json::value& v);
// JSON schema {"type": ...} of a scalar into a Field.
void schema_into_field(const boost::json::object& schema, Field& field);

}  // namespace detail

// Decodes `v` as a value of type X, appending pydantic's error objects (at `loc`) to
// `errors`; nullopt when it did not validate.
template <class X>
std::optional<X> decode_json(const boost::json::value& v, const boost::json::array& loc,
                             boost::json::array& errors);

template <class T>
struct ValueTraits<T, std::enable_if_t<detail::is_described_v<T>>> {
  static constexpr bool required = true;
  static boost::json::value to_json(const T& value) {
    boost::json::object o;
    boost::mp11::mp_for_each<detail::public_members<T>>([&](auto d) {
      using M = detail::member_type_t<decltype(value.*d.pointer)>;
      o[d.name] = ValueTraits<M>::to_json(value.*d.pointer);
    });
    return o;
  }
};

template <class X>
std::optional<X> decode_json(const boost::json::value& v, const boost::json::array& loc,
                             boost::json::array& errors) {
  if constexpr (detail::is_described_v<X>) {
    if (v.is_null()) {
      errors.push_back(detail::error_object(loc, detail::none_error()));
      return std::nullopt;
    }
    auto dict = detail::as_dict(v);
    if (!dict) {
      errors.push_back(detail::error_object(loc, detail::dict_error()));
      return std::nullopt;
    }
    X out{};
    bool ok = true;
    boost::mp11::mp_for_each<detail::public_members<X>>([&](auto d) {
      using M = detail::member_type_t<decltype(out.*d.pointer)>;
      const auto field_loc = detail::loc_plus(loc, boost::json::value(d.name));
      const auto* found = dict->if_contains(d.name);
      if (found == nullptr) {
        if constexpr (!detail::is_optional<M>::value) {
          errors.push_back(detail::error_object(field_loc, detail::missing_error()));
          ok = false;
        }
        return;
      }
      auto m = decode_json<M>(*found, field_loc, errors);
      if (m) {
        out.*d.pointer = std::move(*m);
      } else {
        ok = false;
      }
    });
    if (!ok) return std::nullopt;
    return out;
  } else if constexpr (detail::is_optional<X>::value) {
    std::optional<X> out(std::in_place);  // engaged: null is a valid (empty) value
    if (v.is_null()) return out;
    auto inner = decode_json<typename X::value_type>(v, loc, errors);
    if (!inner) return std::nullopt;
    out->emplace(std::move(*inner));
    return out;
  } else if constexpr (detail::is_vector<X>::value) {
    if (!v.is_array()) {
      errors.push_back(
          detail::error_object(loc, v.is_null() ? detail::none_error() : detail::list_error()));
      return std::nullopt;
    }
    X out;
    bool ok = true;
    std::int64_t i = 0;
    for (const auto& e : v.as_array()) {
      auto item = decode_json<typename X::value_type>(e, detail::loc_plus(loc, i++), errors);
      if (item) {
        out.push_back(std::move(*item));
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  } else {
    auto r = ValueTraits<X>::from_json(v);
    if (!r) {
      errors.push_back(detail::error_object(loc, r.error()));
      return std::nullopt;
    }
    return std::move(*r);
  }
}

// T as JSON (its described members, in declaration order; nullopt as null).
template <class T>
boost::json::value to_json(const T& value) {
  return ValueTraits<T>::to_json(value);
}

// JSON as T, or pydantic v1's error objects (loc relative to the value: ["title"]).
template <class T>
Result<T, boost::json::array> from_json(const boost::json::value& v) {
  boost::json::array errors;
  auto r = decode_json<T>(v, boost::json::array{}, errors);
  if (!r) return Err{std::move(errors)};
  return std::move(*r);
}

namespace detail {
template <class T>
concept has_model_name = requires(const T* p) {
  { gatehouse_model_name(p) } -> std::convertible_to<std::string>;
};
}  // namespace detail

// The OpenAPI model of described struct T (named by GATEHOUSE_MODEL, or `name`), with
// FastAPI's response filtering (Model::filter).
template <class T>
Model model_of(std::string name = {}) {
  static_assert(detail::is_described_v<T>,
                "gatehouse::model_of<T>: describe T first, e.g. GATEHOUSE_MODEL(T, a, b) or "
                "BOOST_DESCRIBE_STRUCT(T, (), (a, b))");
  if (name.empty()) {
    if constexpr (detail::has_model_name<T>) {
      name = gatehouse_model_name(static_cast<const T*>(nullptr));
    } else {
      static_assert(detail::has_model_name<T>,
                    "gatehouse::model_of<T>(): T was not declared with GATEHOUSE_MODEL; give its "
                    "OpenAPI name, model_of<T>(\"Name\")");
    }
  }
  Model m;
  m.name = std::move(name);
  boost::mp11::mp_for_each<detail::public_members<T>>([&](auto d) {
    using M = detail::member_type_t<decltype(std::declval<T&>().*d.pointer)>;
    using Inner = typename detail::unwrap_optional<M>::type;
    static_assert(!detail::is_described_v<Inner>,
                  "gatehouse::model_of<T>: a member that is itself a model is not supported yet");
    Field f;
    f.name = d.name;
    f.required = !detail::is_optional<M>::value;
    boost::json::object s;
    ValueTraits<M>::schema(s);
    detail::schema_into_field(s, f);
    m.fields.push_back(std::move(f));
  });
  bool plain = true;
  boost::mp11::mp_for_each<detail::public_members<T>>([&](auto d) {
    using M = detail::member_type_t<decltype(std::declval<T&>().*d.pointer)>;
    plain = plain && detail::reads_back_unchanged<M>();
  });
  if (plain) m.unfiltered_type = &typeid(T);
  m.filter = [](const boost::json::value& v) -> std::optional<boost::json::value> {
    boost::json::array errors;
    auto t = decode_json<T>(v, boost::json::array{}, errors);
    if (!t) return std::nullopt;
    return to_json(*t);
  };
  return m;
}

namespace detail {

// The request body as FastAPI 0.92 reads it for a JSON body parameter: empty is
// missing; JSON when there is no Content-Type or it is application/json or
// application/*+json (invalid JSON: 422 value_error.jsondecode); any other body is
// raw bytes, which no model accepts (type_error.dict). Sets `errors` and returns
// nullopt on failure; a JSON null is missing too. A body that is not UTF-8 sets
// `stop` (FastAPI's 400 "There was an error parsing the body").
std::optional<boost::json::value> read_json_body(const Request& request, bool required,
                                                 boost::json::array& errors, bool& absent,
                                                 std::optional<HttpException>& stop);

}  // namespace detail

// The request's JSON body as T: FastAPI's `item: Item` body parameter. Documented as
// the route's application/json requestBody ($ref to T's schema, required).
template <class T>
class JsonBody : public Dependency<T> {
 public:
  JsonBody()
      : Dependency<T>(
            [](const SecurityScopes&, Binding& binding) {
              binding.set_json_body(model_of<T>(), true);
              return typename Dependency<T>::Resolver([](RequestContext& ctx) -> Outcome<T> {
                boost::json::array errors;
                bool absent = false;
                std::optional<HttpException> stop;
                auto body = detail::read_json_body(ctx.request(), true, errors, absent, stop);
                if (stop) return Err{std::move(*stop)};
                if (!body) return Err{HttpException::validation_error(std::move(errors))};
                auto value = decode_json<T>(*body, boost::json::array{"body"}, errors);
                if (!value) return Err{HttpException::validation_error(std::move(errors))};
                return std::move(*value);
              });
            },
            5) {}
};

}  // namespace gatehouse
