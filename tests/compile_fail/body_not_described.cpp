// expect: describe T first, e.g. GATEHOUSE_MODEL(T, a, b)
// A JSON body whose type is not a described model.
#include <gatehouse/gatehouse.hpp>

struct Item {
  std::string name;
};

int main() {
  gatehouse::App app;
  app.post(
      "/items/", {.name = "create"}, [](const Item& item) { return boost::json::value(item.name); },
      gatehouse::JsonBody<Item>());
}
