"""The sample's API: GET / says the service is up; items are kept in
memory (the sample has no database)."""
from fastapi import FastAPI

app = FastAPI()
items = {}


@app.get("/")
def root():
    return {"message": "OK"}


@app.put("/items/{name}")
def put_item(name: str, value: str):
    items[name] = value
    return {"name": name, "value": value}


@app.get("/items/{name}")
def get_item(name: str):
    return {"name": name, "value": items.get(name)}
