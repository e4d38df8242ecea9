// The part page's 3D viewer: loads the configured part's STL (built by the preview task) and
// shows it with three.js; drag to rotate, scroll to zoom. When the configuration changes, the
// htmx answer carries a new #preview-state with another data-stl-url, and the mesh is swapped.
// A model that no longer matches the form is never shown as if it did: while a change is on
// its way or its preview is being built the old model is dimmed and marked stale
// (data-state="stale"), and while the parameters are invalid it is removed
// (data-state="invalid"), with a note saying why.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { STLLoader } from "three/addons/loaders/STLLoader.js";

const container = document.getElementById("viewer");
const width = () => container.clientWidth || 400;
const height = () => container.clientHeight || 320;

const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
renderer.setSize(width(), height());
container.appendChild(renderer.domElement);

const scene = new THREE.Scene();
scene.background = new THREE.Color(0xf3f5f8);
const camera = new THREE.PerspectiveCamera(40, width() / height(), 0.1, 10000);
camera.up.set(0, 0, 1); // parts are modelled Z up, as they are printed
camera.position.set(80, -120, 90);
scene.add(new THREE.HemisphereLight(0xffffff, 0x8899aa, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 1.6);
sun.position.set(100, -150, 200);
scene.add(sun);
const controls = new OrbitControls(camera, renderer.domElement);
controls.enableDamping = true;

const material = new THREE.MeshStandardMaterial({ color: 0x2f7fd6, metalness: 0.1, roughness: 0.6 });
const FRESH = { color: 0x2f7fd6, opacity: 1 };
const STALE = { color: 0x9aa3ad, opacity: 0.35 };
const note = document.getElementById("viewer-note");
const loader = new STLLoader();
let mesh = null;
let shownUrl = null;

function frame(geometry) {
  geometry.computeBoundingBox();
  const box = geometry.boundingBox;
  const center = box.getCenter(new THREE.Vector3());
  geometry.translate(-center.x, -center.y, -center.z);
  const size = box.getSize(new THREE.Vector3()).length() || 1;
  camera.near = size / 100;
  camera.far = size * 100;
  camera.position.set(size * 0.8, -size * 1.2, size * 0.9);
  camera.updateProjectionMatrix();
  controls.target.set(0, 0, 0);
  controls.update();
}

function look(state, text) {
  const fresh = state === "shown";
  material.color.setHex(fresh ? FRESH.color : STALE.color);
  material.opacity = fresh ? FRESH.opacity : STALE.opacity;
  material.transparent = !fresh;
  material.needsUpdate = true;
  container.dataset.state = state;
  if (note) {
    note.textContent = text || "";
    note.hidden = !text;
  }
}

function markStale(text) {
  if (mesh) look("stale", text || "Updating the preview…");
}

function clear(text) {
  shownUrl = null; // a load still on its way is dropped, and the same model loads again later
  if (mesh) {
    scene.remove(mesh);
    mesh.geometry.dispose();
    mesh = null;
  }
  delete container.dataset.url;
  look("invalid", text);
}

function show(url) {
  if (!url) return;
  if (url === shownUrl) {
    if (mesh) look("shown");
    return;
  }
  shownUrl = url;
  container.dataset.state = "loading";
  loader.load(
    url,
    (geometry) => {
      if (url !== shownUrl) return; // a newer configuration arrived meanwhile
      geometry.computeVertexNormals();
      frame(geometry);
      if (mesh) {
        scene.remove(mesh);
        mesh.geometry.dispose();
      }
      mesh = new THREE.Mesh(geometry, material);
      scene.add(mesh);
      look("shown");
      container.dataset.url = url;
      container.dataset.triangles = String(geometry.attributes.position.count / 3);
    },
    undefined,
    () => { container.dataset.state = "error"; },
  );
}

function fromPage() {
  const config = document.getElementById("config-state");
  const state = document.getElementById("preview-state");
  if (config && config.dataset.state === "invalid") {
    clear("No preview: fix the parameters first.");
  } else if (state && state.dataset.stlUrl) {
    show(state.dataset.stlUrl);
  } else if (state && state.dataset.status === "failed") {
    clear("No preview: the part cannot be built with these values.");
  } else {
    markStale("Building the preview of these values…");
  }
}

window.addEventListener("resize", () => {
  renderer.setSize(width(), height());
  camera.aspect = width() / height();
  camera.updateProjectionMatrix();
});
document.body.addEventListener("htmx:afterSettle", fromPage);
// The form changed: the model on screen is the previous configuration's until the answer.
const form = document.getElementById("part-form");
if (form) form.addEventListener("input", () => markStale());
(function animate() {
  requestAnimationFrame(animate);
  controls.update();
  renderer.render(scene, camera);
})();
fromPage();
