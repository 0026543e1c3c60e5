// blob_compare: a Caffe net's every array on the CPU against the GPU, and two training
// results against each other; the comparison tool of the offline bundle's check.sh
// (scripts/build/gpu_bundle.py compiles it against the bundle's libcaffe).
//
//   blob_compare fb NET.prototxt WEIGHTS.caffemodel GPU_ID TOL
//       The TEST phase of NET with WEIGHTS (dropout is the identity there): forward and
//       backward on the CPU, then (GPU_ID >= 0) the same on that GPU. Every blob's data
//       and every parameter gradient is compared: ||gpu - cpu|| / ||cpu|| (L2). GPU_ID -1
//       runs the CPU pass alone. Prints "key value" lines; exit 0 when the largest
//       relative difference is <= TOL (or no GPU pass), 1 when it is not, 2 bad input.
//   blob_compare params INIT.caffemodel A.caffemodel B.caffemodel TOL
//       Two nets trained from INIT (e.g. on the CPU and on the GPU): per parameter array
//       the relative difference of the updates, ||(a - init) - (b - init)|| / ||a - init||,
//       and of the parameters, ||a - b|| / ||a||. Exit 0 when the largest update
//       difference is <= TOL, 1 when it is not, 2 bad input.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"

using caffe::Blob;
using caffe::Caffe;
using caffe::Net;
using std::string;
using std::vector;

typedef std::map<string, vector<float> > Arrays;

static double norm_diff(const vector<float>& a, const vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return std::sqrt(s);
}

static double norm(const vector<float>& a, const vector<float>* base) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = static_cast<double>(a[i]) - (base ? (*base)[i] : 0.0);
    s += d * d;
  }
  return std::sqrt(s);
}

// ||ref - other|| / ||ref - base|| (base NULL: / ||ref||). With a base, that is the relative
// difference of the two updates (ref - base) and (other - base).
static double rel(const vector<float>& ref, const vector<float>& other, const vector<float>* base) {
  double num = norm_diff(ref, other), den = norm(ref, base);
  return den > 0 ? num / den : num;
}

static vector<float> copy_of(const float* p, int n) { return vector<float>(p, p + n); }

// One forward + backward pass from the data layer on; every blob and parameter gradient.
static Arrays pass(Net<float>* net, float* loss) {
  net->Forward(loss);
  net->ClearParamDiffs();
  net->Backward();
  Arrays out;
  const vector<string>& names = net->blob_names();
  for (size_t i = 0; i < names.size(); ++i) {
    const Blob<float>* b = net->blobs()[i].get();
    out["blob " + names[i]] = copy_of(b->cpu_data(), b->count());
  }
  for (size_t l = 0; l < net->layers().size(); ++l) {
    const vector<boost::shared_ptr<Blob<float> > >& ps = net->layers()[l]->blobs();
    for (size_t j = 0; j < ps.size(); ++j) {
      char key[512];
      snprintf(key, sizeof key, "grad %s[%d]", net->layer_names()[l].c_str(), static_cast<int>(j));
      out[key] = copy_of(ps[j]->cpu_diff(), ps[j]->count());
    }
  }
  return out;
}

static int forward_backward(const char* model, const char* weights, int gpu, double tol) {
  Caffe::set_mode(Caffe::CPU);
  Net<float> net(model, caffe::TEST);
  net.CopyTrainedLayersFrom(weights);
  float loss_cpu = 0;
  Arrays cpu = pass(&net, &loss_cpu);
  printf("loss_cpu %.9g\narrays %d\n", loss_cpu, static_cast<int>(cpu.size()));
  if (gpu < 0) return 0;
#ifdef CPU_ONLY
  fprintf(stderr, "blob_compare: this Caffe is a CPU-only build; no GPU pass\n");
  return 2;
#else
  Caffe::SetDevice(gpu);
  Caffe::set_mode(Caffe::GPU);
  float loss_gpu = 0;
  pass(&net, &loss_gpu);  // first touch: allocation, cuBLAS handle
  Arrays g = pass(&net, &loss_gpu);
  double worst = -1;
  string worst_key;
  for (Arrays::const_iterator it = cpu.begin(); it != cpu.end(); ++it) {
    double r = rel(it->second, g[it->first], NULL);
    if (!(r <= worst)) { worst = r; worst_key = it->first; }  // NaN counts as worst
  }
  printf("loss_gpu %.9g\nmax_rel_diff %.3e\nworst %s\n", loss_gpu, worst, worst_key.c_str());
  return worst <= tol ? 0 : 1;
#endif
}

static bool read_params(const char* path, Arrays* out) {
  caffe::NetParameter p;
  if (!caffe::ReadProtoFromBinaryFile(path, &p)) return false;
  for (int l = 0; l < p.layer_size(); ++l) {
    for (int j = 0; j < p.layer(l).blobs_size(); ++j) {
      Blob<float> b;
      b.FromProto(p.layer(l).blobs(j), true);
      char key[512];
      snprintf(key, sizeof key, "%s[%d]", p.layer(l).name().c_str(), j);
      (*out)[key] = copy_of(b.cpu_data(), b.count());
    }
  }
  return true;
}

static int params(const char* init, const char* a, const char* b, double tol) {
  Arrays i0, pa, pb;
  const char* files[3] = {init, a, b};
  Arrays* sets[3] = {&i0, &pa, &pb};
  for (int k = 0; k < 3; ++k) {
    if (!read_params(files[k], sets[k])) {
      fprintf(stderr, "blob_compare: cannot read %s as a .caffemodel\n", files[k]);
      return 2;
    }
  }
  double worst_u = -1, worst_p = -1;
  string key_u, key_p;
  for (Arrays::const_iterator it = pa.begin(); it != pa.end(); ++it) {
    const string& k = it->first;
    if (!pb.count(k) || !i0.count(k) || pb[k].size() != it->second.size() ||
        i0[k].size() != it->second.size()) {
      fprintf(stderr, "blob_compare: parameter %s differs in shape or is missing\n", k.c_str());
      return 2;
    }
    double u = rel(it->second, pb[k], &i0[k]), p = rel(it->second, pb[k], NULL);
    if (!(u <= worst_u)) { worst_u = u; key_u = k; }
    if (!(p <= worst_p)) { worst_p = p; key_p = k; }
  }
  printf("arrays %d\nmax_update_rel_diff %.3e\nworst_update %s\nmax_param_rel_diff %.3e\n"
         "worst_param %s\n", static_cast<int>(pa.size()), worst_u, key_u.c_str(), worst_p,
         key_p.c_str());
  return worst_u <= tol ? 0 : 1;
}

int main(int argc, char** argv) {
  FLAGS_alsologtostderr = 0;
  google::InitGoogleLogging(argv[0]);
  string mode = argc > 1 ? argv[1] : "";
  if (mode == "fb" && argc == 6)
    return forward_backward(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
  if (mode == "params" && argc == 6)
    return params(argv[2], argv[3], argv[4], atof(argv[5]));
  fprintf(stderr, "usage: blob_compare fb NET.prototxt WEIGHTS.caffemodel GPU_ID TOL\n"
                  "       blob_compare params INIT.caffemodel A.caffemodel B.caffemodel TOL\n");
  return 2;
}
