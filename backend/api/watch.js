// Plays one instance's live stream: the supervisor offers a VP8 track over WebRTC (all its
// ICE candidates in the offer), this page answers, and reconnects when the stream drops.
"use strict";

const instance = document.body.dataset.instance;
const video = document.getElementById("video");
const statusLine = document.getElementById("status");
const api = `/api/instances/${encodeURIComponent(instance)}/stream/viewers`;
const RETRY_MS = 2000;
let pc = null;
let viewer = null;
let retrying = null;

function say(text) {
  statusLine.textContent = text;
}

async function problem(response) {
  try {
    const body = await response.json();
    return body.message || response.statusText;
  } catch (_) {
    return response.statusText;
  }
}

// Answer with every candidate at once (the supervisor does not take trickled ones).
function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (peer.iceGatheringState === "complete") {
        peer.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    peer.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // answer with what there is
  });
}

function leave() {
  if (pc) pc.close();
  pc = null;
  if (viewer) {
    fetch(`${api}/${viewer}`, { method: "DELETE", keepalive: true }).catch(() => {});
  }
  viewer = null;
}

function retry(reason) {
  leave();
  say(`${reason}; trying again…`);
  clearTimeout(retrying);
  retrying = setTimeout(() => connect().catch((e) => retry(e.message)), RETRY_MS);
}

async function connect() {
  say("connecting…");
  const offered = await fetch(api, { method: "POST" });
  if (!offered.ok) throw new Error(await problem(offered));
  const offer = await offered.json();
  viewer = offer.id;
  const peer = new RTCPeerConnection();
  pc = peer;
  peer.ontrack = (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  peer.onconnectionstatechange = () => {
    if (peer !== pc) return;
    if (peer.connectionState === "connected") say("live");
    if (peer.connectionState === "failed") retry("the stream was lost");
  };
  await peer.setRemoteDescription({ type: "offer", sdp: offer.sdp });
  await peer.setLocalDescription(await peer.createAnswer());
  await gathered(peer);
  const answered = await fetch(`${api}/${offer.id}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: peer.localDescription.sdp }),
  });
  if (!answered.ok) throw new Error(await problem(answered));
  say("connecting the picture…");
}

window.addEventListener("pagehide", leave);
connect().catch((e) => retry(e.message));
