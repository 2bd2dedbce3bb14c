// Talks to the api micro with the browser's session: no key needed in the browser.
// The notes are kept in the app's Base, their files in its Drive: a reload keeps them.
async function refresh() {
  const hello = await fetch("api/").then((r) => r.json());
  document.getElementById("greeting").textContent = hello.message;
  const notes = await fetch("api/notes").then((r) => r.json());
  const list = document.getElementById("notes");
  list.replaceChildren(...notes.map((n) => {
    const item = Object.assign(document.createElement("li"), { textContent: n.text + " " });
    if (n.file) {
      const link = Object.assign(document.createElement("a"), {
        href: `api/notes/${encodeURIComponent(n.key)}/file`,
        textContent: n.file.split("/").slice(1).join("/"),
      });
      item.append(link);
    }
    const remove = Object.assign(document.createElement("button"), { textContent: "×", title: "Delete" });
    remove.className = "delete";
    remove.addEventListener("click", async () => {
      await fetch(`api/notes/${encodeURIComponent(n.key)}`, { method: "DELETE" });
      refresh();
    });
    item.append(" ", remove);
    return item;
  }));
}

document.getElementById("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await fetch("api/notes", { method: "POST", body: new FormData(form) });
  form.reset();
  refresh();
});

new EventSource("clock/events").onmessage = (event) => {
  document.getElementById("clock").textContent = event.data;
};

refresh();
