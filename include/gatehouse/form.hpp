// A form body as the HTTP layer parsed it (urlencoded or multipart): HTTP types that
// the form dependencies (OAuth2PasswordRequestForm, params.hpp) read.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gatehouse {

// A form body as the server parsed it (urlencoded or multipart), in arrival order.
struct FormField {
  std::string name;
  std::string value;
  bool is_file = false;  // a multipart part sent with a filename
};
class FormData {
 public:
  FormData() = default;
  explicit FormData(std::vector<FormField> fields) : fields_(std::move(fields)) {}
  // The last value sent under `name` (as Starlette's FormData.get), or nullptr.
  [[nodiscard]] const FormField* get(std::string_view name) const;
  [[nodiscard]] const std::vector<FormField>& fields() const noexcept { return fields_; }

 private:
  std::vector<FormField> fields_;
};

}  // namespace gatehouse
