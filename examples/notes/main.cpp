// A notes service on gatehouse: path, query and JSON-body parameters, typed models,
// two scopes and its own user loader. examples/notes/app.py is the same service in
// FastAPI; tests/http/test_notes_example.py sends both the same requests.
//
//   SECRET_KEY=... ./notes_example 8080
//   curl localhost:8080/docs
#include <gatehouse/gatehouse.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace gatehouse;

struct NoteIn {
  std::string title;
  std::optional<std::string> body;
};
GATEHOUSE_MODEL(NoteIn, title, body)

struct Note {
  std::int64_t id = 0;
  std::string owner;
  std::string title;
  std::optional<std::string> body;
};
GATEHOUSE_MODEL(Note, id, owner, title, body)

struct Author {
  std::string username;
  std::optional<std::string> full_name;
};

int main(int argc, char** argv) {
  const char* secret = std::getenv("SECRET_KEY");
  if (secret == nullptr) {
    std::cerr << "set SECRET_KEY\n";
    return 2;
  }
  auto verifier = Verifier::hs256(secret);
  OAuth2PasswordBearer oauth2_scheme({
      .token_url = "http://127.0.0.1:8000/token",
      .scopes = {{"notes:read", "Read notes."}, {"notes:write", "Write notes."}},
  });

  // The user loader: who a token's `sub` is (here a fixed list; a database in life).
  static const std::map<std::string, Author> authors{{"ann", {"ann", "Ann Example"}},
                                                     {"bob", {"bob", std::nullopt}}};
  auto current_author = current_user<Author>(
      verifier, oauth2_scheme, [](const VerifiedToken& token) -> std::shared_ptr<const Author> {
        auto it = authors.find(token.subject);
        return it == authors.end() ? nullptr : std::make_shared<const Author>(it->second);
      });
  using AuthorPtr = std::shared_ptr<const Author>;

  std::mutex mutex;
  std::map<std::int64_t, Note> notes;
  std::int64_t next_id = 1;

  App app({.title = "Notes", .version = "1.0.0"});
  app.get(
      "/notes/", {.name = "list_notes"},
      [&](int limit, const std::optional<std::string>& q, const std::vector<std::string>& word,
          const AuthorPtr&) {
        std::lock_guard lock(mutex);
        std::vector<Note> out;
        for (const auto& [id, note] : notes) {
          if (static_cast<int>(out.size()) >= limit) break;
          bool match = !q || note.title.find(*q) != std::string::npos;
          for (const auto& w : word) match = match && note.title.find(w) != std::string::npos;
          if (match) out.push_back(note);
        }
        return out;
      },
      Query<int>("limit", 10, {.ge = 1, .le = 100}),
      Query<std::optional<std::string>>("q", {.min_length = 2, .max_length = 50}),
      Query<std::vector<std::string>>("word", std::vector<std::string>{}),
      Security(current_author, {"notes:read"}));
  app.get(
      "/notes/{note_id}", {.name = "read_note", .response_model = model_of<Note>()},
      [&](std::int64_t note_id, const AuthorPtr&) -> Outcome<Note> {
        std::lock_guard lock(mutex);
        auto it = notes.find(note_id);
        if (it == notes.end()) return Err{HttpException(404, "Note not found")};
        return it->second;
      },
      Path<std::int64_t>("note_id"), Security(current_author, {"notes:read"}));
  app.post(
      "/notes/", {.name = "create_note", .response_model = model_of<Note>()},
      [&](const NoteIn& in, const AuthorPtr& author) {
        std::lock_guard lock(mutex);
        Note note{next_id++, author->username, in.title, in.body};
        notes[note.id] = note;
        return note;
      },
      JsonBody<NoteIn>(), Security(current_author, {"notes:write"}));
  app.del(
      "/notes/{note_id}", {.name = "delete_note"},
      [&](std::int64_t note_id, const AuthorPtr& author) -> Outcome<boost::json::value> {
        std::lock_guard lock(mutex);
        auto it = notes.find(note_id);
        if (it == notes.end()) return Err{HttpException(404, "Note not found")};
        if (it->second.owner != author->username) {
          return Err{HttpException(403, "Not your note")};
        }
        notes.erase(it);
        return boost::json::value{{"deleted", note_id}};
      },
      Path<std::int64_t>("note_id"), Security(current_author, {"notes:write"}));

  ServerOptions options;
  options.port = static_cast<std::uint16_t>(argc > 1 ? std::stoi(argv[1]) : 8080);
  options.on_listening = [](std::uint16_t port) {
    std::cerr << "notes: listening on 127.0.0.1:" << port << "\n";
  };
  Server server(app, options);
  server.stop_on_signals();  // Ctrl-C and SIGTERM end run(); server.stop() would too
  server.run();
}
