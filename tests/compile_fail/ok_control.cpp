// expect-success
// The control: a correct route table compiles with the same command, so the failures
// of the other snippets are theirs, not the command's.
#include <gatehouse/gatehouse.hpp>

struct Item {
  std::string name;
  std::optional<int> size;
};
GATEHOUSE_MODEL(Item, name, size)

int main() {
  gatehouse::App app;
  app.post(
      "/items/{id}", {.name = "put"},
      [](int id, const std::vector<int>& tag, const Item& item) {
        return boost::json::value{{"id", id}, {"tags", tag.size()}, {"name", item.name}};
      },
      gatehouse::Path<int>("id", {.ge = 1}),
      gatehouse::Query<std::vector<int>>("tag", std::vector<int>{}), gatehouse::JsonBody<Item>());
}
