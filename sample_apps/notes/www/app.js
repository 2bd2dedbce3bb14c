// Talks to the api micro with the browser's session: no key needed in the browser.
async function refresh() {
  const hello = await fetch("api/").then((r) => r.json());
  document.getElementById("greeting").textContent = hello.message;
  const notes = await fetch("api/notes").then((r) => r.json());
  const list = document.getElementById("notes");
  list.replaceChildren(...notes.map((n) => Object.assign(document.createElement("li"), { textContent: n.text })));
}

document.getElementById("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.text;
  await fetch("api/notes", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: input.value }),
  });
  input.value = "";
  refresh();
});

new EventSource("clock/events").onmessage = (event) => {
  document.getElementById("clock").textContent = event.data;
};

refresh();
