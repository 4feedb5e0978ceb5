#pragma once

#include <QIcon>
#include <QString>

namespace ifs {

/// A theme icon with our bundled SVG as the fallback (":/icons/<name>.svg").
QIcon themedIcon(const QString &name);

} // namespace ifs
