// Stands in for Node built-ins (fs, path, crypto) that libheif-js only requires under Node.
export default {};
