// Every Base and Drive call of Deta's npm SDK, run against whatever DETA_BASE_HOST and
// DETA_DRIVE_HOST say, with only the environment space-dev gives a micro. GET /run?base=NAME
// answers with each step's result, for the test to check.
const http = require("http");
const { Deta } = require("deta");

async function step(results, name, fn) {
  try {
    results[name] = { ok: await fn() };
  } catch (err) {
    results[name] = { error: String(err && err.message ? err.message : err) };
  }
}

async function scenario(baseName, driveName) {
  const deta = Deta();
  const db = deta.Base(baseName);
  const r = {};
  await step(r, "put", () => db.put({ key: "a", n: 1, tags: ["x"], nested: { deep: true } }));
  await step(r, "put_value", () => db.put("plain string", "s"));
  await step(r, "put_many", () => db.putMany([{ key: "b", n: 2 }, { key: "c/d", n: 3 }]));
  await step(r, "get", () => db.get("a"));
  await step(r, "get_slash", () => db.get("c/d"));
  await step(r, "get_missing", () => db.get("missing"));
  await step(r, "insert_taken", () => db.insert({ key: "a", n: 0 }));
  await step(r, "insert_new", () => db.insert({ n: 9 }));
  await step(r, "update", () => db.update(
    { n: db.util.increment(2), tags: db.util.append("y"), "nested.deep": false,
      gone: db.util.trim() }, "a"));
  await step(r, "after_update", () => db.get("a"));
  await step(r, "update_missing", () => db.update({ n: 1 }, "missing"));
  await step(r, "fetch_gte", async () => (await db.fetch({ "n?gte": 2 })).items);
  await step(r, "fetch_or", async () => (await db.fetch([{ n: 2 }, { n: 9 }])).items);
  await step(r, "fetch_key_or", async () => (await db.fetch(
    [{ "key?pfx": "c/", n: 3 }, { "key?pfx": "c/", n: 4 }])).items);
  // Refused by Deta: one OR'ed object bounds the key, the other does not.
  await step(r, "fetch_mixed_key", () => db.fetch([{ n: 2 }, { "key?pfx": "c/" }]));
  await step(r, "page1", () => db.fetch({}, { limit: 2 }));
  await step(r, "page2", async () => {
    const first = await db.fetch({}, { limit: 2 });
    return db.fetch({}, { limit: 2, last: first.last });
  });
  await step(r, "expiring", async () => {
    await db.put({ key: "e" }, "e", { expireIn: 1 });
    return db.get("e");
  });
  await step(r, "expired", () => db.put({ key: "old" }, "old", { expireAt: new Date(1000) })
    .then(() => db.get("old")));
  await step(r, "delete", async () => {
    const answer = await db.delete("b");
    return { answer: answer === undefined ? "undefined" : answer, after: await db.get("b") };
  });

  const drive = deta.Drive(driveName);
  await step(r, "drive_put", () => drive.put("docs/hello.txt", { data: "hello drive" }));
  await step(r, "drive_get", async () => {
    const blob = await drive.get("docs/hello.txt");
    return blob === null ? null : await blob.text();
  });
  await step(r, "drive_get_missing", () => drive.get("nope.txt"));
  const big = Buffer.alloc(12 * 1024 * 1024 + 5, 7);
  await step(r, "drive_put_big", () => drive.put("big.bin", { data: big,
    contentType: "application/octet-stream" }));
  await step(r, "drive_get_big", async () => {
    const blob = await drive.get("big.bin");
    const bytes = Buffer.from(await blob.arrayBuffer());
    return { size: bytes.length, same: bytes.equals(big) };
  });
  await step(r, "drive_list", () => drive.list());
  await step(r, "drive_list_prefix", () => drive.list({ prefix: "docs/" }));
  await step(r, "drive_list_page", () => drive.list({ limit: 1 }));
  await step(r, "drive_delete", () => drive.delete("big.bin"));
  await step(r, "drive_delete_many", () => drive.deleteMany(["docs/hello.txt", "never.txt"]));
  await step(r, "drive_after", () => drive.list());
  return r;
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname !== "/run") {
    res.end("sdk micro");
    return;
  }
  const results = await scenario(url.searchParams.get("base"), url.searchParams.get("drive"));
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify(results));
}).listen(Number(process.env.PORT), "127.0.0.1");
