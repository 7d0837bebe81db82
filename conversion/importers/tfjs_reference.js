// The parity reference of a TF.js graph model: TensorFlow.js itself (its WebAssembly backend, no native
// binary to download), run by Node on the inputs the Python importer wrote.
//   node tfjs_reference.js MODEL.json IN_DIR OUT_DIR
// IN_DIR/inputs.json: [{"name": "input_1:0", "shape": [1, 3, 416, 416], "file": "x0.f32"}, ...] (one
// entry per run: raw little-endian float32). OUT_DIR/outputs.json: per run, {output name: {shape, file}}.
// Needs @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm (NODE_PATH=var/node/node_modules;
// `make import-env` installs them from npm).
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');

function fileHandler(modelJson) {
  // tf.loadGraphModel over plain files: the manifest's shards are read from the model's folder; a
  // missing or short shard is an error naming it (tfjs would otherwise read garbage or hang on fetch).
  return {
    load: async () => {
      const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
      const specs = [];
      const buffers = [];
      for (const group of model.weightsManifest) {
        for (const p of group.paths) {
          buffers.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
        }
        specs.push(...group.weights);
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: model.modelTopology, format: model.format, generatedBy: model.generatedBy,
        convertedBy: model.convertedBy, signature: model.signature, userDefinedMetadata: model.userDefinedMetadata,
        weightSpecs: specs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

async function main() {
  const [modelJson, inDir, outDir] = process.argv.slice(2);
  await tf.setBackend('wasm');
  await tf.ready();
  const model = await tf.loadGraphModel(fileHandler(modelJson));
  const runs = JSON.parse(fs.readFileSync(path.join(inDir, 'inputs.json'), 'utf8'));
  const names = model.outputs.map((o) => o.name);
  const result = [];
  for (let k = 0; k < runs.length; k++) {
    const r = runs[k];
    const buf = fs.readFileSync(path.join(inDir, r.file));
    const x = tf.tensor(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), r.shape, 'float32');
    const feed = {};
    feed[r.name] = x;
    const outs = await model.executeAsync(feed, names);
    const list = Array.isArray(outs) ? outs : [outs];
    const entry = {};
    for (let i = 0; i < list.length; i++) {
      const file = `y${k}_${i}.f32`;
      fs.writeFileSync(path.join(outDir, file), Buffer.from((await list[i].data()).buffer));
      entry[names[i]] = { shape: list[i].shape, file };
      list[i].dispose();
    }
    x.dispose();
    result.push(entry);
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version.tfjs, runs: result }));
}

main().catch((e) => { process.stderr.write(String(e && e.stack ? e.stack : e) + '\n'); process.exit(1); });
