/* dfnet bind: the deprecated integer property keys (fuchsia.BIND_*).
 *
 * Source: Fuchsia src/devices/lib/bind/src/compiler/symbol_table.rs, deprecated_keys()
 * (the keys the bind compiler knows as built-ins; the same numbers as
 * src/lib/ddk/include/lib/ddk/binding_priv.h). One X-macro table, used by the bind
 * compiler's built-ins, the bytecode dumper and the host enumerators, so the names and
 * numbers never drift. In bind source a key is written `fuchsia.<name>`
 * (e.g. `fuchsia.BIND_PCI_VID`); a node property may carry it as the integer key or as
 * the string key "fuchsia.<name>" (the matcher looks up both, see docs/spec/bind.md).
 *
 * Header-only: no library needs to be linked to use it.
 */
#ifndef DFNET_BIND_KEYS_H
#define DFNET_BIND_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value): in the order of Fuchsia's deprecated_keys() (its duplicate
 * BIND_PLATFORM_DEV_VID entry is listed once). */
#define DFNET_BIND_KEYS_MAP(X)                 \
  X(BIND_PROTOCOL, 0x0001)                     \
  X(BIND_AUTOBIND, 0x0002)                     \
  X(BIND_COMPOSITE, 0x0003)                    \
  X(BIND_FIDL_PROTOCOL, 0x0004)                \
  /* PCI, 0x01XX */                            \
  X(BIND_PCI_VID, 0x0100)                      \
  X(BIND_PCI_DID, 0x0101)                      \
  X(BIND_PCI_CLASS, 0x0102)                    \
  X(BIND_PCI_SUBCLASS, 0x0103)                 \
  X(BIND_PCI_INTERFACE, 0x0104)                \
  X(BIND_PCI_REVISION, 0x0105)                 \
  X(BIND_PCI_TOPO, 0x0107)                     \
  /* USB, 0x02XX (interfaces and functions) */ \
  X(BIND_USB_VID, 0x0200)                      \
  X(BIND_USB_PID, 0x0201)                      \
  X(BIND_USB_CLASS, 0x0202)                    \
  X(BIND_USB_SUBCLASS, 0x0203)                 \
  X(BIND_USB_PROTOCOL, 0x0204)                 \
  X(BIND_USB_INTERFACE_NUMBER, 0x0205)         \
  /* platform bus, 0x03XX */                   \
  X(BIND_PLATFORM_DEV_VID, 0x0300)             \
  X(BIND_PLATFORM_DEV_PID, 0x0301)             \
  X(BIND_PLATFORM_DEV_DID, 0x0302)             \
  X(BIND_PLATFORM_DEV_INSTANCE_ID, 0x0304)     \
  X(BIND_PLATFORM_DEV_INTERRUPT_ID, 0x0305)    \
  /* ACPI, 0x04XX */                           \
  X(BIND_ACPI_BUS_TYPE, 0x0400)                \
  X(BIND_ACPI_ID, 0x0401)                      \
  /* Intel HDA codec, 0x05XX */                \
  X(BIND_IHDA_CODEC_VID, 0x0500)               \
  X(BIND_IHDA_CODEC_DID, 0x0501)               \
  X(BIND_IHDA_CODEC_MAJOR_REV, 0x0502)         \
  X(BIND_IHDA_CODEC_MINOR_REV, 0x0503)         \
  X(BIND_IHDA_CODEC_VENDOR_REV, 0x0504)        \
  X(BIND_IHDA_CODEC_VENDOR_STEP, 0x0505)       \
  /* serial, 0x06XX */                         \
  X(BIND_SERIAL_CLASS, 0x0600)                 \
  X(BIND_SERIAL_VID, 0x0601)                   \
  X(BIND_SERIAL_PID, 0x0602)                   \
  /* NAND, 0x07XX */                           \
  X(BIND_NAND_CLASS, 0x0700)                   \
  /* SDIO, 0x09XX */                           \
  X(BIND_SDIO_VID, 0x0900)                     \
  X(BIND_SDIO_PID, 0x0901)                     \
  X(BIND_SDIO_FUNCTION, 0x0902)                \
  /* I2C, 0x0A0X */                            \
  X(BIND_I2C_CLASS, 0x0A00)                    \
  X(BIND_I2C_BUS_ID, 0x0A01)                   \
  X(BIND_I2C_ADDRESS, 0x0A02)                  \
  /* GPIO, 0x0A1X */                           \
  X(BIND_GPIO_PIN, 0x0A10)                     \
  X(BIND_GPIO_CONTROLLER, 0x0A11)              \
  /* power, 0x0A2X */                          \
  X(BIND_POWER_DOMAIN, 0x0A20)                 \
  X(BIND_POWER_DOMAIN_COMPOSITE, 0x0A21)       \
  /* clock, 0x0A3X */                          \
  X(BIND_CLOCK_ID, 0x0A30)                     \
  /* SPI, 0x0A4X */                            \
  X(BIND_SPI_BUS_ID, 0x0A41)                   \
  X(BIND_SPI_CHIP_SELECT, 0x0A42)              \
  /* PWM, 0x0A5X */                            \
  X(BIND_PWM_ID, 0x0A50)                       \
  /* init step, 0x0A6X */                      \
  X(BIND_INIT_STEP, 0x0A60)                    \
  /* codec, 0x0A7X */                          \
  X(BIND_CODEC_INSTANCE, 0x0A70)               \
  /* power sensor, 0x0A9X */                   \
  X(BIND_POWER_SENSOR_DOMAIN, 0x0A90)          \
  /* mailbox, 0x0AAX */                        \
  X(BIND_MAILBOX_ID, 0x0AA0)

/* DFNET_BIND_PROTOCOL = 0x0001, DFNET_BIND_PCI_VID = 0x0100, ... */
enum dfnet_bind_key {
#define DFNET_BIND_KEY_ENUM_(name, value) DFNET_##name = value,
  DFNET_BIND_KEYS_MAP(DFNET_BIND_KEY_ENUM_)
#undef DFNET_BIND_KEY_ENUM_
};

/* One entry of the table, for code that walks it. */
typedef struct dfnet_bind_key_entry {
  const char *name; /* qualified: "fuchsia.BIND_PCI_VID" */
  uint32_t value;
} dfnet_bind_key_entry_t;

/* The whole table as an array; *count receives its length. Static storage. */
static inline const dfnet_bind_key_entry_t *dfnet_bind_keys(size_t *count) {
  static const dfnet_bind_key_entry_t table[] = {
#define DFNET_BIND_KEY_ENTRY_(name, value) {"fuchsia." #name, value},
      DFNET_BIND_KEYS_MAP(DFNET_BIND_KEY_ENTRY_)
#undef DFNET_BIND_KEY_ENTRY_
  };
  *count = sizeof(table) / sizeof(table[0]);
  return table;
}

/* The fully qualified name of a deprecated key ("fuchsia.BIND_PCI_VID"), or NULL when
 * `key` is not in the table. Returns a static string. */
static inline const char *dfnet_bind_key_name(uint32_t key) {
  size_t count = 0;
  const dfnet_bind_key_entry_t *table = dfnet_bind_keys(&count);
  for (size_t i = 0; i < count; i++) {
    if (table[i].value == key) {
      return table[i].name;
    }
  }
  return NULL;
}

/* Look a deprecated key up by its qualified name ("fuchsia.BIND_PCI_VID").
 * Returns 1 and sets *out, or 0 when the name is not in the table (*out untouched). */
static inline int dfnet_bind_key_from_name(const char *name, uint32_t *out) {
  size_t count = 0;
  const dfnet_bind_key_entry_t *table = dfnet_bind_keys(&count);
  for (size_t i = 0; i < count; i++) {
    if (strcmp(table[i].name, name) == 0) {
      *out = table[i].value;
      return 1;
    }
  }
  return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* DFNET_BIND_KEYS_H */
