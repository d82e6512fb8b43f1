# The notes example (main.cpp) as a FastAPI 0.92 app, for comparison and for
# tests/http/test_notes_example.py, which sends both the same requests.
#   SECRET_KEY=... python3 -m uvicorn app:app --port 8080
import os
from typing import List, Optional

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from jose import JWTError, jwt
from pydantic import BaseModel

SECRET_KEY = os.environ["SECRET_KEY"]
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="http://127.0.0.1:8000/token",
    scopes={"notes:read": "Read notes.", "notes:write": "Write notes."},
)


class NoteIn(BaseModel):
    title: str
    body: Optional[str] = None


class Note(BaseModel):
    id: int
    owner: str
    title: str
    body: Optional[str] = None


AUTHORS = {"ann": {"username": "ann", "full_name": "Ann Example"},
           "bob": {"username": "bob", "full_name": None}}


def current_author(security_scopes: SecurityScopes, token: str = Depends(oauth2_scheme)):
    value = f'Bearer scope="{security_scopes.scope_str}"' if security_scopes.scopes else "Bearer"
    invalid = HTTPException(401, "Could not validate credentials", {"WWW-Authenticate": value})
    try:
        payload = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
    except JWTError:
        raise invalid
    author = AUTHORS.get(payload.get("sub"))
    if author is None:
        raise invalid
    for scope in security_scopes.scopes:
        if scope not in payload.get("scopes", []):
            raise HTTPException(401, "Not enough permissions", {"WWW-Authenticate": value})
    return author


app = FastAPI(title="Notes", version="1.0.0")
notes = {}
next_id = 1


@app.get("/notes/")
def list_notes(limit: int = Query(10, ge=1, le=100),
               q: Optional[str] = Query(None, min_length=2, max_length=50),
               word: List[str] = Query([]),
               author=Security(current_author, scopes=["notes:read"])):
    found = [n for n in notes.values() if q is None or q in n["title"]]
    return [n for n in found if all(w in n["title"] for w in word)][:limit]


@app.get("/notes/{note_id}", response_model=Note)
def read_note(note_id: int, author=Security(current_author, scopes=["notes:read"])):
    if note_id not in notes:
        raise HTTPException(404, "Note not found")
    return notes[note_id]


@app.post("/notes/", response_model=Note)
def create_note(note: NoteIn, author=Security(current_author, scopes=["notes:write"])):
    global next_id
    created = {"id": next_id, "owner": author["username"], "title": note.title, "body": note.body}
    notes[next_id] = created
    next_id += 1
    return created


@app.delete("/notes/{note_id}")
def delete_note(note_id: int, author=Security(current_author, scopes=["notes:write"])):
    if note_id not in notes:
        raise HTTPException(404, "Note not found")
    if notes[note_id]["owner"] != author["username"]:
        raise HTTPException(403, "Not your note")
    del notes[note_id]
    return {"deleted": note_id}
