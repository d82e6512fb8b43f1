// FastAPI's OAuth2PasswordRequestForm: the token request's form fields, validated
// one by one in declaration order with pydantic v1's error objects.
#include <boost/json/array.hpp>

#include "gatehouse/oauth2.hpp"

namespace gatehouse {

namespace {

boost::json::object error_at(std::string_view field, std::string_view msg, std::string_view type) {
  boost::json::object e;
  e["loc"] = boost::json::array{"body", field};
  e["msg"] = msg;
  e["type"] = type;
  return e;
}

// The fields, as published in OpenAPI (Body_<operation id>).
const std::vector<Field>& form_fields() {
  static const std::vector<Field> fields = [] {
    Field grant{"grant_type"};
    grant.pattern = "password";
    Field scope{"scope"};
    scope.default_value = "";
    return std::vector<Field>{grant,
                              Field{"username", "string", true},
                              Field{"password", "string", true},
                              scope,
                              Field{"client_id"},
                              Field{"client_secret"}};
  }();
  return fields;
}

}  // namespace

Dependency<OAuth2PasswordRequestForm> OAuth2PasswordRequestForm::dependency() {
  using Form = OAuth2PasswordRequestForm;
  return Dependency<Form>(
      [](const SecurityScopes&, Binding& binding) {
        binding.add_form_fields(form_fields());
        // The password form is read to check a password: every route taking it runs on
        // the worker pool, so none can hash on an I/O thread by forgetting `.offload`.
        binding.set_blocking();
        return Dependency<Form>::Resolver([](RequestContext& ctx) -> Outcome<Form> {
          const FormData& data = ctx.form();
          boost::json::array errors;
          Form form;
          // FastAPI quirk: an empty form value counts as missing; a file part where a
          // string is expected is a type error.
          auto field = [&](std::string_view name, bool required) -> std::optional<std::string> {
            const FormField* f = data.get(name);
            if (f == nullptr || (!f->is_file && f->value.empty())) {
              if (required)
                errors.push_back(error_at(name, "field required", "value_error.missing"));
              return std::nullopt;
            }
            if (f->is_file) {
              errors.push_back(error_at(name, "str type expected", "type_error.str"));
              return std::nullopt;
            }
            return f->value;
          };
          form.grant_type = field("grant_type", false);
          // pydantic's constr(regex=...) uses re.match: anchored at the start only, so
          // "passwordX" passes and "xpassword" does not.
          if (form.grant_type && form.grant_type->rfind("password", 0) != 0) {
            auto e = error_at("grant_type", "string does not match regex \"password\"",
                              "value_error.str.regex");
            e["ctx"] = boost::json::object{{"pattern", "password"}};
            errors.push_back(std::move(e));
          }
          if (auto v = field("username", true)) form.username = std::move(*v);
          if (auto v = field("password", true)) form.password = std::move(*v);
          if (auto v = field("scope", false)) form.scopes = split_scopes(*v);
          form.client_id = field("client_id", false);
          form.client_secret = field("client_secret", false);
          if (!errors.empty()) return Err{HttpException::validation_error(std::move(errors))};
          return form;
        });
      },
      /*rank: a body*/ 5);
}

}  // namespace gatehouse
