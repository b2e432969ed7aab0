// Frames the asset the way tv3dg's renders do: the camera looks at the origin from the front (+Z),
// 15 degrees above, far enough that the asset's bounding sphere (?radius=) fits the smaller of
// the two fields of view. Drag to orbit, scroll to zoom. window.tv3dgViewer reports the state (and the
// frames drawn) to tests.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

const FOV_DEG = 40;
const ELEVATION_DEG = 15;
const MARGIN = 1.2;
const SETTLE_FRAMES = 10;

const params = new URLSearchParams(window.location.search);
const message = document.getElementById("message");
window.tv3dgViewer = { ready: false, error: null };

function fail(text) {
  window.tv3dgViewer.error = text;
  message.textContent = text;
}

function distanceFor(radius, aspect) {
  const vertical = THREE.MathUtils.degToRad(FOV_DEG);
  const horizontal = 2 * Math.atan(Math.tan(vertical / 2) * aspect);
  return (radius * MARGIN) / Math.sin(Math.min(vertical, horizontal) / 2);
}

async function main() {
  const url = params.get("asset");
  const radius = Number(params.get("radius") || "1");
  if (!url) return fail("no asset to show yet");
  if (!(radius > 0)) return fail(`radius must be a positive number, got ${params.get("radius")}`);

  const renderer = new THREE.WebGLRenderer({ antialias: false });
  renderer.setPixelRatio(window.devicePixelRatio);
  renderer.setClearColor(new THREE.Color(params.get("background") || "#ffffff"), 1);
  document.body.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  // Spark calls onDirty when a sort (run in a worker after a frame) or another update is ready to show.
  let shown = false;
  scene.add(new SparkRenderer({ renderer, onDirty: () => shown && wake() }));
  const camera = new THREE.PerspectiveCamera(FOV_DEG, 1, radius * 0.01, radius * 100);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.target.set(0, 0, 0);
  controls.enableDamping = false;

  function frame() {
    const width = window.innerWidth, height = window.innerHeight;
    renderer.setSize(width, height, true);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
  }
  frame();
  const elevation = THREE.MathUtils.degToRad(ELEVATION_DEG);
  const distance = distanceFor(radius, camera.aspect);
  camera.position.set(0, distance * Math.sin(elevation), distance * Math.cos(elevation));
  camera.lookAt(0, 0, 0);
  controls.update();
  window.addEventListener("resize", frame);

  const splats = new SplatMesh({ url });
  scene.add(splats);
  await splats.initialized;
  message.textContent = "";
  // Draw only while something changes (a load, a resize, an orbit, a sort Spark has finished): an
  // idle viewer left open in a tab costs no CPU or GPU. Each change draws SETTLE_FRAMES frames.
  let framesLeft = 0;
  function draw() {
    controls.update();
    renderer.render(scene, camera);
    window.tv3dgViewer.frames += 1;
    framesLeft -= 1;
    if (framesLeft <= 0) {
      renderer.setAnimationLoop(null);
      window.tv3dgViewer.drawing = false;
    }
  }
  function wake() {
    if (framesLeft <= 0) renderer.setAnimationLoop(draw);
    framesLeft = SETTLE_FRAMES;
    window.tv3dgViewer.drawing = true;
  }
  window.tv3dgViewer = { ready: true, error: null, splats: splats.numSplats, distance, frames: 0, drawing: false };
  controls.addEventListener("change", wake);
  window.addEventListener("resize", wake);
  shown = true;
  wake();
}

main().catch((err) => fail(`could not show the asset: ${err && err.message ? err.message : err}`));
