#include "archive_description.h"

#include <hdf5.h>

#include <stdexcept>
#include <vector>

#include "fuzz_bytes.h"
#include "io/hdf5_handle.h"

namespace da::fuzz {
namespace {

using io::H5Handle;

constexpr size_t kMaxValueBytes = size_t{1} << 20;  // per record: keeps files and runs small
// A chunk HDF5 fills in memory to write rows into, or a contiguous dataset
// it fills on disk at the first write: larger ones are left unwritten (the
// builder's limit, not the reader's: a dataset's extent may still be absurd).
constexpr double kMaxFilledBytes = 64.0 * (1 << 20);
constexpr int kMaxDatasetRank = 5;

enum TypeClass : uint8_t { kSigned, kUnsigned, kFloat, kFixedString, kVariableString, kTypeClasses };

struct TypeCode {
  uint8_t type_class = kSigned;
  uint8_t size = 1;
};

H5Handle make_type(TypeCode code) {
  switch (code.type_class % kTypeClasses) {
    case kSigned:
    case kUnsigned: {
      static const hid_t kSignedTypes[] = {H5T_STD_I8LE, H5T_STD_I16LE, H5T_STD_I32LE, H5T_STD_I64LE};
      static const hid_t kUnsignedTypes[] = {H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_U32LE, H5T_STD_U64LE};
      const hid_t* types = code.type_class % kTypeClasses == kSigned ? kSignedTypes : kUnsignedTypes;
      return H5Handle(H5Tcopy(types[code.size % 4]), H5Tclose);
    }
    case kFloat:
      return H5Handle(H5Tcopy(code.size % 2 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE), H5Tclose);
    case kFixedString: {
      H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type.get(), code.size == 0 ? 1 : code.size);
      return type;
    }
    default: {
      H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type.get(), H5T_VARIABLE);
      H5Tset_cset(type.get(), code.size % 2 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
      return type;
    }
  }
}

bool is_variable_string(TypeCode code) { return code.type_class % kTypeClasses == kVariableString; }

// The code of an HDF5 type, or false for types a description cannot hold.
bool code_of(hid_t type, TypeCode& code) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      code.type_class = H5Tget_sign(type) == H5T_SGN_NONE ? kUnsigned : kSigned;
      code.size = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
      return true;
    case H5T_FLOAT:
      code.type_class = kFloat;
      code.size = size == 8 ? 1 : 0;
      return true;
    case H5T_STRING:
      if (H5Tis_variable_str(type) > 0) {
        code.type_class = kVariableString;
        code.size = H5Tget_cset(type) == H5T_CSET_UTF8 ? 1 : 0;
      } else {
        code.type_class = kFixedString;
        code.size = static_cast<uint8_t>(size > 255 ? 255 : size);
      }
      return true;
    default:
      return false;
  }
}

TypeCode read_type(FuzzBytes& in) {
  TypeCode code;
  code.type_class = in.value<uint8_t>() % kTypeClasses;
  code.size = in.value<uint8_t>();
  return code;
}

hsize_t element_count(const std::vector<hsize_t>& dims) {
  hsize_t n = 1;
  for (hsize_t d : dims) {
    if (d != 0 && n > kMaxValueBytes / d) return kMaxValueBytes + 1;
    n *= d;
  }
  return n;
}

H5Handle open_owner(hid_t file, const std::string& owner) {
  if (owner.empty()) return H5Handle(H5Oopen(file, "/", H5P_DEFAULT), H5Oclose);
  return H5Handle(H5Oopen(file, owner.c_str(), H5P_DEFAULT), H5Oclose);
}

void add_attribute(hid_t file, FuzzBytes& in) {
  const std::string owner = in.short_string();
  const std::string name = in.short_string();
  const TypeCode code = read_type(in);
  std::vector<hsize_t> dims(in.value<uint8_t>() % 3);
  for (auto& d : dims) d = in.value<uint16_t>();
  const hsize_t count = element_count(dims);
  if (count > kMaxValueBytes) return;
  const H5Handle type = make_type(code);
  std::vector<std::string> strings;
  std::vector<const char*> pointers;
  std::string raw;
  if (is_variable_string(code)) {
    for (hsize_t i = 0; i < count; ++i) strings.push_back(in.short_string());
    for (const auto& s : strings) pointers.push_back(s.c_str());
  } else {
    raw = in.bytes(count * H5Tget_size(type.get()));
    raw.resize(count * H5Tget_size(type.get()), '\0');
  }
  if (name.empty() || name.find('\0') != std::string::npos) return;
  const H5Handle object = open_owner(file, owner);
  if (!object.valid()) return;
  if (H5Aexists(object.get(), name.c_str()) > 0) H5Adelete(object.get(), name.c_str());
  const H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                       H5Sclose);
  const H5Handle attribute(H5Acreate2(object.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                           H5Aclose);
  if (!attribute.valid()) return;
  H5Awrite(attribute.get(), type.get(), is_variable_string(code) ? static_cast<const void*>(pointers.data()) : raw.data());
}

struct Dataset {
  H5Handle handle;
  TypeCode code;
  std::vector<hsize_t> dims;
  bool chunked = false;
};

void add_dataset(hid_t file, FuzzBytes& in, Dataset& last) {
  last = Dataset{};
  const std::string path = in.short_string();
  const TypeCode code = read_type(in);
  std::vector<hsize_t> dims(in.value<uint8_t>() % (kMaxDatasetRank + 1));
  for (auto& d : dims) d = in.value<uint32_t>();
  const uint8_t layout = in.value<uint8_t>();
  std::vector<hsize_t> chunk(dims.size());
  if (layout & 1) {
    for (auto& c : chunk) c = in.value<uint32_t>();
  }
  const uint8_t level = in.value<uint8_t>();
  if (path.empty() || path.find('\0') != std::string::npos) return;

  const H5Handle type = make_type(code);
  std::vector<hsize_t> max_dims = dims;
  if (layout & 16) max_dims.assign(dims.size(), H5S_UNLIMITED);
  const H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                    : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()),
                       H5Sclose);
  const H5Handle create(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  double chunk_bytes = static_cast<double>(H5Tget_size(type.get()));
  for (hsize_t c : chunk) chunk_bytes *= static_cast<double>(c);
  if (layout & 1 && !dims.empty()) {
    if (chunk_bytes > kMaxFilledBytes) return;
    H5Pset_chunk(create.get(), static_cast<int>(chunk.size()), chunk.data());
    if (layout & 8) H5Pset_fletcher32(create.get());
    if (layout & 2) H5Pset_shuffle(create.get());
    if (layout & 4) H5Pset_deflate(create.get(), level % 10);
  }
  const H5Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(links.get(), 1);
  if (H5Lexists(file, path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(file, path.c_str(), H5P_DEFAULT);
  H5Handle dataset(H5Dcreate2(file, path.c_str(), type.get(), space.get(), links.get(), create.get(), H5P_DEFAULT),
                   H5Dclose);
  if (!dataset.valid()) return;
  last = Dataset{std::move(dataset), code, dims, (layout & 1) && !dims.empty()};
}

void add_chunk(FuzzBytes& in, const Dataset& last) {
  std::vector<hsize_t> offset(last.dims.size());
  for (auto& o : offset) o = in.value<uint32_t>();
  const uint32_t filter_mask = in.value<uint32_t>();
  const uint32_t length = in.value<uint32_t>();
  const std::string bytes = in.bytes(length);
  if (!last.handle.valid() || !last.chunked || bytes.empty()) return;
  H5Dwrite_chunk(last.handle.get(), H5P_DEFAULT, filter_mask, offset.data(), bytes.size(), bytes.data());
}

void add_rows(FuzzBytes& in, const Dataset& last) {
  const hsize_t first = in.value<uint32_t>();
  const hsize_t count = in.value<uint32_t>();
  if (!last.handle.valid() || last.dims.empty() || is_variable_string(last.code)) return;
  std::vector<hsize_t> block = last.dims;
  block[0] = count;
  const H5Handle type = make_type(last.code);
  const hsize_t elements = element_count(block);
  if (count == 0 || elements > kMaxValueBytes || first + count > last.dims[0]) return;
  double dataset_bytes = static_cast<double>(H5Tget_size(type.get()));
  for (hsize_t d : last.dims) dataset_bytes *= static_cast<double>(d);
  if (!last.chunked && dataset_bytes > kMaxFilledBytes) return;
  std::string raw = in.bytes(elements * H5Tget_size(type.get()));
  raw.resize(elements * H5Tget_size(type.get()), '\0');
  std::vector<hsize_t> start(block.size(), 0);
  start[0] = first;
  const H5Handle file_space(H5Dget_space(last.handle.get()), H5Sclose);
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, block.data(), nullptr);
  const H5Handle memory_space(H5Screate_simple(static_cast<int>(block.size()), block.data(), nullptr), H5Sclose);
  H5Dwrite(last.handle.get(), type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT, raw.data());
}

// --- describe_archive ---

void describe_attribute(hid_t object, const std::string& owner, const char* name, FuzzBytesWriter& out) {
  const H5Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  const H5Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const H5Handle space(H5Aget_space(attribute.get()), H5Sclose);
  TypeCode code;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (!code_of(type.get(), code) || rank < 0 || rank > 2) return;
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  out.value<uint8_t>(0);
  out.short_string(owner);
  out.short_string(name);
  out.value<uint8_t>(code.type_class);
  out.value<uint8_t>(code.size);
  out.value<uint8_t>(static_cast<uint8_t>(rank));
  for (hsize_t d : dims) out.value<uint16_t>(static_cast<uint16_t>(d));
  const hsize_t count = element_count(dims);
  if (is_variable_string(code)) {
    std::vector<char*> strings(count);
    const H5Handle memory_type = make_type(code);
    H5Aread(attribute.get(), memory_type.get(), strings.data());
    for (char* s : strings) out.short_string(s == nullptr ? "" : s);
    H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, strings.data());
  } else {
    std::string raw(count * H5Tget_size(type.get()), '\0');
    H5Aread(attribute.get(), type.get(), raw.data());
    out.bytes(raw);
  }
}

herr_t collect_attribute(hid_t, const char* name, const H5A_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->push_back(name);
  return 0;
}

void describe_attributes(hid_t object, const std::string& owner, FuzzBytesWriter& out) {
  std::vector<std::string> names;
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute, &names);
  for (const auto& name : names) describe_attribute(object, owner, name.c_str(), out);
}

void describe_dataset(hid_t file, const std::string& path, FuzzBytesWriter& out) {
  const H5Handle dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  const H5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  const H5Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const H5Handle create(H5Dget_create_plist(dataset.get()), H5Pclose);
  TypeCode code;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (!code_of(type.get(), code) || rank < 0 || rank > kMaxDatasetRank || is_variable_string(code)) return;
  std::vector<hsize_t> dims(rank), max_dims(rank), chunk(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), max_dims.data());
  const bool chunked = H5Pget_layout(create.get()) == H5D_CHUNKED;
  uint8_t layout = chunked ? 1 : 0;
  unsigned level = 0;
  if (chunked) {
    H5Pget_chunk(create.get(), rank, chunk.data());
    for (int i = 0; i < H5Pget_nfilters(create.get()); ++i) {
      unsigned flags = 0, values[8] = {};
      size_t n_values = 8;
      const H5Z_filter_t filter = H5Pget_filter2(create.get(), i, &flags, &n_values, values, 0, nullptr, nullptr);
      if (filter == H5Z_FILTER_SHUFFLE) layout |= 2;
      if (filter == H5Z_FILTER_DEFLATE) layout |= 4, level = n_values > 0 ? values[0] : 4;
      if (filter == H5Z_FILTER_FLETCHER32) layout |= 8;
    }
  }
  for (int i = 0; i < rank; ++i) {
    if (max_dims[i] == H5S_UNLIMITED) layout |= 16;
  }
  out.value<uint8_t>(1);
  out.short_string(path);
  out.value<uint8_t>(code.type_class);
  out.value<uint8_t>(code.size);
  out.value<uint8_t>(static_cast<uint8_t>(rank));
  for (hsize_t d : dims) out.value<uint32_t>(static_cast<uint32_t>(d));
  out.value<uint8_t>(layout);
  if (chunked) {
    for (hsize_t c : chunk) out.value<uint32_t>(static_cast<uint32_t>(c));
  }
  out.value<uint8_t>(static_cast<uint8_t>(level));
  if (chunked) {
    hsize_t chunks = 0;
    H5Dget_num_chunks(dataset.get(), H5S_ALL, &chunks);
    for (hsize_t i = 0; i < chunks; ++i) {
      std::vector<hsize_t> offset(rank);
      unsigned filter_mask = 0;
      haddr_t address = 0;
      hsize_t size = 0;
      if (H5Dget_chunk_info(dataset.get(), H5S_ALL, i, offset.data(), &filter_mask, &address, &size) < 0) continue;
      std::string raw(size, '\0');
      uint32_t read_mask = 0;
      if (H5Dread_chunk(dataset.get(), H5P_DEFAULT, offset.data(), &read_mask, raw.data()) < 0) continue;
      out.value<uint8_t>(2);
      for (hsize_t o : offset) out.value<uint32_t>(static_cast<uint32_t>(o));
      out.value<uint32_t>(read_mask);
      out.value<uint32_t>(static_cast<uint32_t>(raw.size()));
      out.bytes(raw);
    }
  } else if (rank > 0 && dims[0] > 0) {
    std::string raw(element_count(dims) * H5Tget_size(type.get()), '\0');
    H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data());
    out.value<uint8_t>(3);
    out.value<uint32_t>(0);
    out.value<uint32_t>(static_cast<uint32_t>(dims[0]));
    out.bytes(raw);
  }
  describe_attributes(dataset.get(), path, out);
}

herr_t collect_dataset(hid_t, const char* name, const H5O_info_t* info, void* paths) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(paths)->push_back(name);
  return 0;
}

}  // namespace

void build_archive(const uint8_t* description, size_t size, const std::string& path) {
  const H5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) throw std::runtime_error("cannot create " + path);
  FuzzBytes in(description, size);
  Dataset last;
  while (!in.empty()) {
    switch (in.value<uint8_t>() % 4) {
      case 0: add_attribute(file.get(), in); break;
      case 1: add_dataset(file.get(), in, last); break;
      case 2: add_chunk(in, last); break;
      default: add_rows(in, last); break;
    }
  }
}

std::string describe_archive(const std::string& path) {
  const H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) throw std::runtime_error("cannot open " + path);
  FuzzBytesWriter out;
  const H5Handle root(H5Oopen(file.get(), "/", H5P_DEFAULT), H5Oclose);
  describe_attributes(root.get(), "", out);
  std::vector<std::string> datasets;
  H5Ovisit2(file.get(), H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &datasets, H5O_INFO_BASIC);
  for (const auto& dataset : datasets) describe_dataset(file.get(), dataset, out);
  return out.str();
}

}  // namespace da::fuzz
