// Node-RED settings for the benchmark peer (bench/nodered.py renders the flow and its
// plain-text credentials into a fresh user directory per run). No editor, no admin API.
module.exports = {
    uiPort: parseInt(process.env.NR_PORT || "1880", 10),
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    httpNodeRoot: false,
    credentialSecret: false,   // flows_cred.json is plain JSON written by the bench
    flowFilePretty: true,
    logging: { console: { level: "info", metrics: false, audit: false } },
    editorTheme: { projects: { enabled: false } },
    functionGlobalContext: {},
};
