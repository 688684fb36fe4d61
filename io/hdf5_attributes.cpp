#include "io/hdf5_attributes.h"

#include <cstring>

#include "io/archive_error.h"
#include "io/hdf5_handle.h"
#include "io/hdf5_util.h"

namespace da::io {
namespace {

std::string where(const char* name) { return std::string("attribute '") + name + "'"; }

// An open attribute with its type and element count (1 for a scalar).
struct OpenAttribute {
  H5Handle attribute;
  H5Handle type;
  H5Handle space;
  size_t count = 0;
};

OpenAttribute open_attribute(const std::string& file, hid_t object, const char* name) {
  if (!has_attribute(object, name)) throw ArchiveError(file, where(name), "missing");
  OpenAttribute open;
  open.attribute = H5Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (!open.attribute.valid()) throw ArchiveError(file, where(name), "cannot open" + hdf5_error_suffix());
  open.type = H5Handle(H5Aget_type(open.attribute.get()), H5Tclose);
  open.space = H5Handle(H5Aget_space(open.attribute.get()), H5Sclose);
  if (!open.type.valid() || !open.space.valid()) {
    throw ArchiveError(file, where(name), "cannot read its type" + hdf5_error_suffix());
  }
  if (H5Sget_simple_extent_ndims(open.space.get()) > 1) {
    throw ArchiveError(
        file, where(name),
        "must be a scalar or 1-D, found rank " + std::to_string(H5Sget_simple_extent_ndims(open.space.get())));
  }
  open.count = static_cast<size_t>(H5Sget_simple_extent_npoints(open.space.get()));
  return open;
}

std::vector<std::string> read_variable_strings(const std::string& file, const char* name, const OpenAttribute& open) {
  // The memory type takes the file's character set: HDF5 1.10 does not
  // convert between ASCII and UTF-8 strings.
  H5Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(memory.get(), H5T_VARIABLE);
  H5Tset_cset(memory.get(), H5Tget_cset(open.type.get()));
  std::vector<char*> pointers(open.count, nullptr);
  if (H5Aread(open.attribute.get(), memory.get(), pointers.data()) < 0) {
    throw ArchiveError(file, where(name), "cannot read" + hdf5_error_suffix());
  }
  std::vector<std::string> values;
  for (char* text : pointers) values.emplace_back(text != nullptr ? text : "");
  H5Dvlen_reclaim(memory.get(), open.space.get(), H5P_DEFAULT, pointers.data());
  return values;
}

std::vector<std::string> read_fixed_strings(const std::string& file, const char* name, const OpenAttribute& open) {
  const size_t size = H5Tget_size(open.type.get());
  std::vector<char> buffer(open.count * size);
  if (H5Aread(open.attribute.get(), open.type.get(), buffer.data()) < 0) {
    throw ArchiveError(file, where(name), "cannot read" + hdf5_error_suffix());
  }
  const bool space_padded = H5Tget_strpad(open.type.get()) == H5T_STR_SPACEPAD;
  std::vector<std::string> values;
  for (size_t i = 0; i < open.count; ++i) {
    const char* text = buffer.data() + i * size;
    std::string value(text, strnlen(text, size));
    if (space_padded) value.erase(value.find_last_not_of(' ') + 1);
    values.push_back(std::move(value));
  }
  return values;
}

// Creates attribute `name` of file type `type` (replacing an existing one) and writes `data`.
void write_attribute(const std::string& file, hid_t object, const char* name, hid_t type, hid_t memory_type,
                     hid_t space, const void* data) {
  if (has_attribute(object, name)) H5Adelete(object, name);
  H5Handle attribute(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid() || H5Awrite(attribute.get(), memory_type, data) < 0) {
    throw ArchiveError(file, where(name), "cannot write" + hdf5_error_suffix());
  }
}

H5Handle utf8_string_type() {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

H5Handle vector_space(size_t count) {
  const hsize_t dims[1] = {count};
  return H5Handle(H5Screate_simple(1, dims, nullptr), H5Sclose);
}

}  // namespace

bool has_attribute(hid_t object, const char* name) { return H5Aexists(object, name) > 0; }

std::vector<std::string> read_string_attribute(const std::string& file, hid_t object, const char* name) {
  const OpenAttribute open = open_attribute(file, object, name);
  if (H5Tget_class(open.type.get()) != H5T_STRING) {
    throw ArchiveError(file, where(name), "must be a string, found " + describe_type(open.type.get()));
  }
  return H5Tis_variable_str(open.type.get()) > 0 ? read_variable_strings(file, name, open)
                                                 : read_fixed_strings(file, name, open);
}

std::vector<int64_t> read_int_attribute(const std::string& file, hid_t object, const char* name) {
  const OpenAttribute open = open_attribute(file, object, name);
  if (H5Tget_class(open.type.get()) != H5T_INTEGER) {
    throw ArchiveError(file, where(name), "must be an integer, found " + describe_type(open.type.get()));
  }
  std::vector<int64_t> values(open.count);
  if (H5Aread(open.attribute.get(), H5T_NATIVE_INT64, values.data()) < 0) {
    throw ArchiveError(file, where(name), "cannot read" + hdf5_error_suffix());
  }
  return values;
}

std::vector<double> read_float_attribute(const std::string& file, hid_t object, const char* name) {
  const OpenAttribute open = open_attribute(file, object, name);
  const H5T_class_t type_class = H5Tget_class(open.type.get());
  if (type_class != H5T_FLOAT && type_class != H5T_INTEGER) {
    throw ArchiveError(file, where(name), "must be numeric, found " + describe_type(open.type.get()));
  }
  std::vector<double> values(open.count);
  if (H5Aread(open.attribute.get(), H5T_NATIVE_DOUBLE, values.data()) < 0) {
    throw ArchiveError(file, where(name), "cannot read" + hdf5_error_suffix());
  }
  return values;
}

void write_string_attribute(const std::string& file, hid_t object, const char* name, const std::string& value) {
  const H5Handle type = utf8_string_type();
  const H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  const char* text = value.c_str();
  write_attribute(file, object, name, type.get(), type.get(), space.get(), &text);
}

void write_string_list_attribute(const std::string& file, hid_t object, const char* name,
                                 const std::vector<std::string>& values) {
  const H5Handle type = utf8_string_type();
  const H5Handle space = vector_space(values.size());
  std::vector<const char*> texts;
  for (const std::string& value : values) texts.push_back(value.c_str());
  write_attribute(file, object, name, type.get(), type.get(), space.get(), texts.data());
}

void write_int_attribute(const std::string& file, hid_t object, const char* name, int64_t value) {
  const H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attribute(file, object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value);
}

void write_float_list_attribute(const std::string& file, hid_t object, const char* name,
                                const std::vector<double>& values) {
  const H5Handle space = vector_space(values.size());
  write_attribute(file, object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), values.data());
}

}  // namespace da::io
