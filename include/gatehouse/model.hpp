// Data models as OpenAPI sees them: the shape of a request body or a response, the
// way pydantic describes a BaseModel in FastAPI's schema.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

namespace gatehouse {

struct Field {
  std::string name;
  std::string type = "string";  // JSON schema type: string, boolean, integer, number
  bool required = false;
  std::optional<std::string> pattern;
  std::optional<boost::json::value> default_value;
  // For type "array": the items' schema, e.g. {"type": "string"}.
  std::optional<boost::json::value> items;
};

struct Model {
  std::string name;
  std::vector<Field> fields;
  // Set by model_of<T>() (models.hpp): the answer is validated into T and written
  // back from it, keeping T's fields only, as FastAPI filters through response_model;
  // nullopt when it does not validate. A Model written by hand only documents.
  std::function<std::optional<boost::json::value>(const boost::json::value&)> filter;
  // Set by model_of<T>() when filtering a T gives back the same T: every field is text,
  // a boolean, an integer, or an optional or list of those, each of which reads back
  // from its JSON unchanged. A handler returning a T is then answered with its JSON
  // as is, without the round trip through `filter` (same bytes, less work). Whoever
  // replaces `filter` with one of their own resets this.
  const std::type_info* unfiltered_type = nullptr;

  // The JSON schema pydantic would publish for this model.
  [[nodiscard]] boost::json::object schema() const;
};

// "full_name" -> "Full Name", as pydantic titles fields and FastAPI summarises routes
// (Python's str.title() on the name with underscores as spaces).
std::string python_title(std::string_view name);

}  // namespace gatehouse
