// expect: this type cannot be a parameter or model field
// A model member of a type that has no JSON conversion.
#include <gatehouse/gatehouse.hpp>

#include <map>

struct Item {
  std::string name;
  std::map<std::string, int> counts;
};
GATEHOUSE_MODEL(Item, name, counts)

int main() {
  gatehouse::App app;
  app.post(
      "/items/", {.name = "create"}, [](const Item& item) { return boost::json::value(item.name); },
      gatehouse::JsonBody<Item>());
}
