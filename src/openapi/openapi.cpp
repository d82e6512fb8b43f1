// The OpenAPI 3.0.2 document, built by walking the route table: each operation's
// security comes from the schemes its dependency tree reached (with the scopes
// accumulated on the way), its request body from the form fields it declared. There
// is no second list of routes to keep in step.
#include <boost/json/parse.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "gatehouse/app.hpp"

namespace gatehouse {

namespace {

const char* kValidationSchemas = R"({
 "HTTPValidationError":{"title":"HTTPValidationError","type":"object","properties":{"detail":{"title":"Detail","type":"array","items":{"$ref":"#/components/schemas/ValidationError"}}}},
 "ValidationError":{"title":"ValidationError","required":["loc","msg","type"],"type":"object","properties":{"loc":{"title":"Location","type":"array","items":{"anyOf":[{"type":"string"},{"type":"integer"}]}},"msg":{"title":"Message","type":"string"},"type":{"title":"Error Type","type":"string"}}}
})";

boost::json::object schema_ref(const std::string& name) {
  return boost::json::object{{"$ref", "#/components/schemas/" + name}};
}

boost::json::object json_content(boost::json::value schema) {
  boost::json::object media;
  media["schema"] = std::move(schema);
  boost::json::object content;
  content["application/json"] = std::move(media);
  return content;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::string python_title(std::string_view name) {
  std::string out;
  bool previous_cased = false;
  for (char ch : name) {
    char c = ch == '_' ? ' ' : ch;
    bool upper = c >= 'A' && c <= 'Z';
    bool lower = c >= 'a' && c <= 'z';
    if (upper || lower) {
      if (previous_cased && upper) c = static_cast<char>(c - 'A' + 'a');
      if (!previous_cased && lower) c = static_cast<char>(c - 'a' + 'A');
      previous_cased = true;
    } else {
      previous_cased = false;
    }
    out += c;
  }
  return out;
}

boost::json::object Model::schema() const {
  boost::json::object s;
  s["title"] = name;
  boost::json::array required;
  boost::json::object properties;
  for (const auto& f : fields) {
    boost::json::object p;
    p["title"] = python_title(f.name);
    if (f.pattern) p["pattern"] = *f.pattern;
    p["type"] = f.type;
    if (f.items) p["items"] = *f.items;
    if (f.default_value) p["default"] = *f.default_value;
    properties[f.name] = std::move(p);
    if (f.required) required.emplace_back(f.name);
  }
  if (!required.empty()) s["required"] = std::move(required);
  s["type"] = "object";
  s["properties"] = std::move(properties);
  return s;
}

std::string Route::operation_id() const {
  std::string id = options.name + (path_format.empty() ? path : path_format);
  for (auto& c : id) {
    bool word =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word) c = '_';
  }
  id += '_';
  id += lower_ascii(method);
  return id;
}

boost::json::value App::openapi() const {
  boost::json::object paths;
  std::map<std::string, boost::json::object> schemas;  // sorted by name, as FastAPI's
  boost::json::object security_schemes;
  bool needs_validation = false;

  for (const auto& route : routes_) {
    if (!route->options.include_in_schema) continue;
    const auto& opts = route->options;
    const auto& binding = route->binding;
    boost::json::object op;
    op["summary"] = opts.summary.empty() ? python_title(opts.name) : opts.summary;
    const auto op_id = route->operation_id();
    op["operationId"] = op_id;
    if (!binding.parameters().empty()) {
      boost::json::array parameters;
      // FastAPI lists path, then query, header and cookie parameters.
      auto ordered = binding.parameters();
      auto rank = [](const Binding::Parameter& p) {
        return p.in == "path" ? 0 : p.in == "query" ? 1 : p.in == "header" ? 2 : 3;
      };
      std::stable_sort(ordered.begin(), ordered.end(),
                       [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
      for (const auto& p : ordered) {
        boost::json::object param;
        if (!p.description.empty()) param["description"] = p.description;
        param["required"] = p.required;
        param["schema"] = p.schema;
        param["name"] = p.name;
        param["in"] = p.in;
        parameters.push_back(std::move(param));
      }
      op["parameters"] = std::move(parameters);
    }
    if (const auto& body = binding.json_body()) {
      boost::json::object request_body;
      request_body["content"] = json_content(schema_ref(body->name));
      if (binding.json_body_required()) request_body["required"] = true;
      op["requestBody"] = std::move(request_body);
      schemas[body->name] = body->schema();
    }
    if (binding.has_form_body()) {
      Model body{"Body_" + op_id, binding.form_fields()};
      bool required = false;
      for (const auto& f : body.fields) required = required || f.required;
      boost::json::object media;
      media["schema"] = schema_ref(body.name);
      boost::json::object content;
      content["application/x-www-form-urlencoded"] = std::move(media);
      boost::json::object request_body;
      request_body["content"] = std::move(content);
      if (required) request_body["required"] = true;
      op["requestBody"] = std::move(request_body);
      schemas[body.name] = body.schema();
    }
    boost::json::object responses;
    boost::json::object ok;
    ok["description"] = "Successful Response";
    if (opts.response_model) {
      ok["content"] = json_content(schema_ref(opts.response_model->name));
      schemas[opts.response_model->name] = opts.response_model->schema();
    } else {
      ok["content"] = json_content(boost::json::object{});
    }
    responses["200"] = std::move(ok);
    if (binding.validates()) {
      needs_validation = true;
      boost::json::object invalid;
      invalid["description"] = "Validation Error";
      invalid["content"] = json_content(schema_ref("HTTPValidationError"));
      responses["422"] = std::move(invalid);
    }
    op["responses"] = std::move(responses);
    if (!binding.security().empty()) {
      boost::json::array security;
      for (const auto& use : binding.security()) {
        boost::json::array scopes;
        for (const auto& s : use.scopes) scopes.emplace_back(s);
        security.push_back(boost::json::object{{use.scheme->name, std::move(scopes)}});
        if (!security_schemes.contains(use.scheme->name)) {
          security_schemes[use.scheme->name] = use.scheme->openapi;
        }
      }
      op["security"] = std::move(security);
    }
    auto& item = paths[route->path_format.empty() ? route->path : route->path_format];
    if (!item.is_object()) item = boost::json::object{};
    item.as_object()[lower_ascii(route->method)] = std::move(op);
  }

  if (needs_validation) {
    const auto validation = boost::json::parse(kValidationSchemas);
    for (const auto& kv : validation.as_object()) {
      schemas[std::string(kv.key())] = kv.value().as_object();
    }
  }
  boost::json::object doc;
  doc["openapi"] = "3.0.2";
  doc["info"] = boost::json::object{{"title", info_.title}, {"version", info_.version}};
  doc["paths"] = std::move(paths);
  boost::json::object components;
  if (!schemas.empty()) {
    boost::json::object s;
    for (auto& [name, schema] : schemas) s[name] = std::move(schema);
    components["schemas"] = std::move(s);
  }
  if (!security_schemes.empty()) components["securitySchemes"] = std::move(security_schemes);
  if (!components.empty()) doc["components"] = std::move(components);
  return doc;
}

}  // namespace gatehouse
